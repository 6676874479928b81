"""INV_010 and INV_011: the intent log's guarantees (chapter 08): an acknowledged intent
survives, and derived data equals a recomputation from the events it was built from."""

from typing import Any

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.observe import clusters, severity
from runtime.observe.failures import Failure, failures
from runtime.store import Event

# --- INV_010 -------------------------------------------------------------------------

_INTENT_KINDS = ("intent.project", "intent.sync")
_LOST_INTENTS = """
SELECT 'recorded' AS what, json_extract(v.detail, '$.intent') AS intent, NULL AS job, v.seq
  FROM events v
 WHERE v.type = 'intent.recorded'
   AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.id = json_extract(v.detail, '$.intent'))
UNION ALL
SELECT 'orphan', json_extract(j.payload, '$.intent'), j.id,
       (SELECT min(v.seq) FROM events v WHERE v.job_id = j.id)
  FROM jobs j
 WHERE j.kind IN ('intent.project', 'intent.sync')
   AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.id = json_extract(j.payload, '$.intent'))
UNION ALL
SELECT 'unfollowed', i.id, NULL,
       (SELECT min(v.seq) FROM events v WHERE v.type = 'intent.recorded'
           AND json_extract(v.detail, '$.intent') = i.id)
  FROM intents i
 WHERE (SELECT count(DISTINCT j.kind) FROM jobs j
         WHERE j.kind IN ('intent.project', 'intent.sync')
           AND json_extract(j.payload, '$.intent') = i.id) < 2
ORDER BY 2, 1, 3
"""


def fold_intents(m: Monitor, event: Event) -> None:
    """Note that intents or their jobs changed, so INV_010 looks again."""
    if event.type == "intent.recorded" or (
        event.type == "job.submitted" and event.detail.get("kind") in _INTENT_KINDS
    ):
        m.intents_seen = m.intents_touched = True


def check_intents_durable(m: Monitor, final: bool) -> list[Violation]:
    """INV_010: an acknowledged intent survives any crash, with its follow-up jobs, and no
    work exists for an intent the intent log does not hold."""
    if not (m.intents_touched or (final and _has_intents(m))):
        return []
    m.intents_touched = False
    violations = []
    for what, intent, job, seq in m.store.tuples(_LOST_INTENTS):
        if what == "recorded":
            message = f"intent {intent} was acknowledged (intent.recorded) but is not in the log"
            evidence = Evidence(events=(seq,))
        elif what == "orphan":
            message = f"job {job} works for intent {intent}, which the intent log does not hold"
            evidence = Evidence(jobs=(job,), events=(seq,))
        else:
            message = f"intent {intent} is in the log without its projection and sync jobs"
            evidence = Evidence(events=() if seq is None else (seq,))
        violations.append(Violation("INV_010", message, evidence))
    return violations


def _has_intents(m: Monitor) -> bool:
    """Whether there is anything for INV_010 to look at: an intent logged, or one in the
    table (written without its event, which the log alone would not show)."""
    if m.intents_seen:
        return True
    return (
        m.store.schema_version() >= 3 and m.store.one("SELECT 1 FROM intents LIMIT 1") is not None
    )


# --- INV_011 -------------------------------------------------------------------------


def fold_rebuilds(m: Monitor, event: Event) -> None:
    """Note the latest rebuild of each derived table (runtime.observe.derived)."""
    if event.type == "derived.rebuilt":
        m.rebuilds[event.detail["table"]] = event


def check_derived_fresh(m: Monitor, final: bool) -> list[Violation]:
    """INV_011: a derived table holds exactly what a fresh computation from the log, up to
    the event its rebuild covered, gives. A view the log has moved past is stale, not
    wrong; one whose rows differ from what its own events give is wrong."""
    if not m.rebuilds:
        return []
    views = {clusters.TABLE: clusters, severity.TABLE: severity}
    touched = {e.detail["table"] for e in m.fresh if e.type == "derived.rebuilt"}
    violations = []
    for table, rebuilt in sorted(m.rebuilds.items()):
        if not (final or table in touched) or table not in views:
            continue
        view = views[table]
        upto = rebuilt.detail["upto_seq"]
        stored, fresh = view.stored(m.store), view.compute(m.store, upto)
        if stored == fresh:
            continue
        extra = [row for row in stored if row not in fresh]
        missing = [row for row in fresh if row not in stored]
        behind = _failures_behind([*extra, *missing], failures(m.store, upto))
        violations.append(
            Violation(
                "INV_011",
                f"{table} holds {len(stored)} rows, but the log up to event {upto} gives"
                f" {len(fresh)}: {len(extra)} stored that it does not give, {len(missing)}"
                f" it gives that are not stored"
                + (f" (first stored: {_row(extra[0])})" if extra else "")
                + (f" (first given: {_row(missing[0])})" if missing else ""),
                Evidence(
                    tuple(sorted({f.job for f in behind})),
                    (),
                    (*sorted({f.seq for f in behind}), rebuilt.seq),
                ),
            )
        )
    return violations


def _failures_behind(rows: list[Any], found: list[Failure]) -> list[Failure]:
    """The failures a derived row counts or rates: the jobs and events to look at."""
    behind: list[Failure] = []
    for row in rows:
        if isinstance(row, clusters.Cluster):
            type_, start = row.type, row.window_start
        elif row.subject == "event":
            behind += [f for f in found if str(f.seq) == row.ref]
            continue
        elif row.subject == "cluster":
            type_, _, at = row.ref.rpartition("@")
            start = float(at)
        else:
            behind += [f for f in found if f.type == row.ref]
            continue
        behind += [
            f for f in found if f.type == type_ and start <= f.at < start + clusters.WINDOW_S
        ]
    return behind


def _row(row: Any) -> str:
    return ", ".join(f"{name}={value}" for name, value in vars(row).items())
