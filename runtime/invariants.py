"""The invariants, as code: each checker reads durable state and the event log.

Prior art: Hypothesis invariants, TigerBeetle's "check on write, check again on read".
The runtime refuses bad writes as it makes them; these checkers verify again, from what
the database holds, that the guarantees held. A repro test asserts a named INV_XXX *is*
reported (with evidence: jobs, executions, event seqs); a prevent test asserts none are.
The same checkers run in tests, in the simulator after every step (runtime.monitor keeps
what they read up to date), and in `fmlab check`.

Checkers never read fault annotations (`fault.*` events): a failure must be detectable from
what the runtime itself recorded, not from what the test harness knows it broke.
"""

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from runtime import states
from runtime.monitor import JobView, Monitor
from runtime.observe import clusters, severity
from runtime.observe.failures import Failure, failures
from runtime.queue import REAPER
from runtime.store import Event, Store

APPEND_ONLY_TRIGGERS = ("events_are_append_only_update", "events_are_append_only_delete")
WORKER_WRITES = frozenset(
    {
        "execution.started",
        "effect.applied",
        "effect.absorbed",
        "execution.committed",
        "job.succeeded",
        "job.retry_scheduled",
        "job.dead",
        "lease.extended",
    }
)


@dataclass(frozen=True)
class Evidence:
    jobs: tuple[int, ...] = ()
    executions: tuple[int, ...] = ()
    events: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "jobs": list(self.jobs),
            "executions": list(self.executions),
            "events": list(self.events),
        }


@dataclass(frozen=True)
class Violation:
    inv: str
    message: str
    evidence: Evidence = field(default_factory=Evidence)

    def __str__(self) -> str:
        e = self.evidence
        return (
            f"{self.inv}: {self.message} (jobs {list(e.jobs)}, executions "
            f"{list(e.executions)}, events {list(e.events)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"inv": self.inv, "message": self.message, "evidence": self.evidence.as_dict()}


# --- INV_001 -------------------------------------------------------------------------


def check_effect_at_most_once(m: Monitor, final: bool) -> list[Violation]:
    """INV_001: an effect (a sink and a key) is applied at most once, by whichever job:
    the key names the logical effect (order 1001's points), so two jobs for one order
    applying it twice is the same duplicate as one job applying it twice."""
    keys = dict.fromkeys((row["sink"], row["key"]) for job in m.dirty for row in job.effects)
    violations = []
    for sink, key in keys:
        rows = m.mirror.effects_keyed(sink, key)
        if len(rows) < 2:
            continue
        jobs = tuple(dict.fromkeys(r["job_id"] for r in rows))
        executions = tuple(r["execution_id"] for r in rows)
        whose = f"job {jobs[0]}'s effect" if len(jobs) == 1 else "effect"
        by = " and ".join(map(str, executions))
        if len(jobs) > 1:
            by += " of jobs " + " and ".join(map(str, jobs))
        violations.append(
            Violation(
                "INV_001",
                f"{whose} {sink}/{key} was applied {len(rows)} times, by executions {by}",
                Evidence(
                    jobs,
                    executions,
                    tuple(m.applied_seq[r["id"]] for r in rows if r["id"] in m.applied_seq),
                ),
            )
        )
    return violations


# --- INV_002 -------------------------------------------------------------------------


def check_effects_recorded(m: Monitor, final: bool) -> list[Violation]:
    """INV_002: no irreversible effect without a durable record; a crash leaves a trace.

    Every effect has its `effect.applied` event and belongs to an execution of its job, and
    an execution that applied an effect has committed it: an effect left behind by an
    attempt that ended without committing is work the system does not know it did.

    An external effect is called before the commit, so a timeout can leave one applied by
    an attempt that then failed. It is known once a later attempt of its job repeats the
    call, has it absorbed by its idempotency key and commits; until the job has finished
    (or the run has), that may still come.
    """
    violations = []
    for view in m.dirty:
        finished = final or (view.row is not None and view.row["state"] in states.JOB_TERMINAL)
        violations += _effects_recorded(m, view, finished, final)
    return violations


def _effects_recorded(m: Monitor, view: JobView, finished: bool, final: bool) -> list[Violation]:
    violations = []
    for row in view.effects:
        effect, job, execution = row["id"], row["job_id"], row["execution_id"]
        owner = m.executions.get(execution)
        if effect not in m.applied_seq:
            violations.append(
                Violation(
                    "INV_002",
                    f"effect {effect} of job {job} has no effect.applied event",
                    Evidence((job,), (execution,)),
                )
            )
        if owner is None or owner["job_id"] != job:
            violations.append(
                Violation(
                    "INV_002",
                    f"effect {effect} names execution {execution}, not one of job {job}",
                    Evidence((job,), (execution,), m.seqs_of_effect(effect)),
                )
            )
        elif (
            execution not in m.committed
            and (final or owner["status"] not in states.EXECUTION_OPEN)
            and (finished or effect not in m.external_effects)
            and not any(x in m.committed for x in m.absorbed_by.get(effect, ()))
        ):
            violations.append(
                Violation(
                    "INV_002",
                    f"execution {execution} applied job {job}'s effect {row['sink']}/{row['key']}"
                    f" but ended {owner['status']} without committing it",
                    Evidence((job,), (execution,), m.seqs_of_effect(effect)),
                )
            )
    return violations


# --- INV_003 -------------------------------------------------------------------------

_MOVES = (
    ("job", "job_state", states.JOB_TRANSITIONS),
    ("execution", "execution_state", states.EXECUTION_TRANSITIONS),
)


def fold_log(m: Monitor, event: Event) -> None:
    """Check the log itself as it is folded in: gap-free seqs, and replayed moves that are
    legal and start from the state the log had reached."""
    if event.seq != m.seq + 1 and "gap" not in m.found_in_log:
        m.found_in_log["gap"].append(
            Violation(
                "INV_003",
                f"the event log has a gap: seq {m.seq + 1} missing before {event.seq}",
                Evidence(events=(event.seq,)),
            )
        )
    for what, key, legal in _MOVES:
        move = event.detail.get(key)
        if move is None:
            continue
        subject = event.job_id if what == "job" else event.execution_id
        before, after = move
        current = m.replayed[what].get(subject)
        if (before, after) not in legal:
            m.found_in_log["INV_003"].append(
                Violation(
                    "INV_003",
                    f"{what} {subject} moved {before} -> {after}, which is illegal",
                    evidence_for(m, what, subject, event.seq),
                )
            )
        elif before != current:
            m.found_in_log["INV_003"].append(
                Violation(
                    "INV_003",
                    f"{what} {subject} moved {before} -> {after} but the log had it {current}",
                    evidence_for(m, what, subject, event.seq),
                )
            )
        m.replayed[what][subject] = after
        m.replayed_seq[what][subject] = event.seq


def check_transitions_logged(m: Monitor, final: bool) -> list[Violation]:
    """INV_003: only legal transitions, each one logged; the log gap-free and append-only."""
    violations = []
    missing = [name for name in APPEND_ONLY_TRIGGERS if name not in m.triggers]
    if missing:
        violations.append(
            Violation("INV_003", "the event log is not append-only: missing " + ", ".join(missing))
        )
    violations += m.found_in_log.get("gap", ())
    violations += m.found_in_log.get("INV_003", ())
    jobs = [job.row for job in m.dirty if job.row is not None]
    executions = [x for job in m.dirty for x in job.executions]
    for what, column, rows in (("job", "state", jobs), ("execution", "status", executions)):
        replayed = m.replayed[what]
        for row in rows:
            subject, state = row["id"], row[column]
            if replayed.get(subject) != state:
                violations.append(
                    Violation(
                        "INV_003",
                        f"{what} {subject} is {state} but its logged history ends at "
                        f"{replayed.get(subject)}: a transition was not logged",
                        evidence_for(m, what, subject, m.replayed_seq[what].get(subject)),
                    )
                )
    return violations


# --- INV_004 -------------------------------------------------------------------------


def check_no_lost_or_lying_work(m: Monitor, final: bool) -> list[Violation]:
    """INV_004: no lost and no lying work.

    Every SUCCEEDED job has its effect (applied by it, or absorbed by an external system as a
    repeat of one applied before); every DEAD job carries its reasons; no job stays
    RUNNING on a lease that had expired when the reaper swept; and once the run is over
    (`final`), every accepted job has ended SUCCEEDED or DEAD. Only a sweep logged after
    the lease was granted (or last extended) counts: when the clock steps back, a sweep
    can carry a later time than a lease granted after it.
    """
    violations = []
    last_sweep = m.last_sweep
    for view in m.dirty:
        job_id, job = view.id, view.row
        if job is None:
            continue
        state = job["state"]
        if state == states.SUCCEEDED and not view.effects and job_id not in m.absorbed_jobs:
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is SUCCEEDED but no effect of it was ever applied",
                    evidence_for(m, "job", job_id, m.replayed_seq["job"].get(job_id)),
                )
            )
        if state == states.DEAD and (not job["last_error"] or not m.error_events.get(job_id)):
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is DEAD without the reasons it died",
                    evidence_for(m, "job", job_id, m.replayed_seq["job"].get(job_id)),
                )
            )
        if state == states.RUNNING and last_sweep is not None:
            for execution in view.executions:
                if (
                    execution["status"] in states.EXECUTION_OPEN
                    and execution["fencing_token"] == job["fencing_token"]
                    and execution["lease_expires_at"] <= last_sweep.at
                    and m.lease_seq.get(execution["id"], 0) < last_sweep.seq
                ):
                    violations.append(
                        Violation(
                            "INV_004",
                            f"job {job_id} is still RUNNING on execution {execution['id']}, whose "
                            f"lease expired at {execution['lease_expires_at']:.3f}, although the "
                            f"reaper swept at {last_sweep.at:.3f}",
                            Evidence((job_id,), (execution["id"],), (last_sweep.seq,)),
                        )
                    )
        if final and state not in states.JOB_TERMINAL:
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} was accepted but ended the run {state}",
                    evidence_for(m, "job", job_id, m.replayed_seq["job"].get(job_id)),
                )
            )
    return violations


# --- INV_005 -------------------------------------------------------------------------


def check_failures_signalled(m: Monitor, final: bool) -> list[Violation]:
    """INV_005: every failure leaves a detectable signal: an event carrying the error. The
    event that ends a failed attempt carries that attempt's own error (a dead job's summary
    that names no cause is not a signal of what happened)."""
    violations = []
    for execution in (x for job in m.dirty for x in job.executions):
        execution_id, status = execution["id"], execution["status"]
        if status not in (states.FAILED, states.ABORTED):
            continue
        ending = [
            e
            for e in m.error_events.get(execution["job_id"], ())
            if e.execution_id == execution_id
            and (e.detail.get("execution_state") or [None, None])[1] == status
        ]
        cause = execution["error"] or ""
        if not ending:
            violations.append(
                Violation(
                    "INV_005",
                    f"execution {execution_id} of job {execution['job_id']} ended "
                    f"{status} and no event says why",
                    Evidence((execution["job_id"],), (execution_id,)),
                )
            )
        elif not any(cause in e.detail["error"] for e in ending):
            event = ending[-1]
            violations.append(
                Violation(
                    "INV_005",
                    f"execution {execution_id} of job {execution['job_id']} ended {status} "
                    f"with {cause!r}, but the {event.type} that ended it says "
                    f"{event.detail['error']!r}",
                    Evidence((execution["job_id"],), (execution_id,), (event.seq,)),
                )
            )
    for view in m.dirty:
        job_id, error = view.id, view.row and view.row["last_error"]
        if error and not any(e.detail["error"] == error for e in m.error_events.get(job_id, ())):
            violations.append(
                Violation(
                    "INV_005",
                    f"job {job_id}'s last error {error!r} appears in no event",
                    evidence_for(m, "job", job_id, None),
                )
            )
    return violations


# --- INV_006 -------------------------------------------------------------------------


def check_retries_bounded(m: Monitor, final: bool) -> list[Violation]:
    """INV_006: retries are bounded: at most max_attempts attempts between redrives."""
    violations = []
    for view in m.dirty:
        job_id, job = view.id, view.row
        if job is None:
            continue
        attempts_max = job["max_attempts"]
        taken = m.leases.get(job_id, [])[: attempts_max + 1]
        if len(taken) > attempts_max or job["attempts"] > attempts_max:
            # Reported once, as the first attempt past the budget: later ones add nothing.
            violations.append(
                Violation(
                    "INV_006",
                    f"job {job_id} was attempted {attempts_max + 1} times; its budget is "
                    f"{attempts_max}",
                    Evidence(
                        (job_id,), tuple(e.execution_id for e in taken), tuple(e.seq for e in taken)
                    ),
                )
            )
    return violations


# --- INV_007 -------------------------------------------------------------------------


def fold_fencing(m: Monitor, event: Event) -> None:
    """Replay the log: after a job is leased with a newer token, or once a lease has
    expired, no write by the older holder may appear."""
    if event.type == "job.leased":
        m.newest_lease[event.job_id] = event
        m.expires[event.execution_id] = event.detail["lease_expires_at"]
        return
    if event.type not in WORKER_WRITES or event.worker == REAPER or event.job_id is None:
        return
    if event.detail.get("external"):
        return  # another system's record of a call it took: fencing cannot reach it
    current = m.newest_lease.get(event.job_id)
    if current is not None and event.execution_id != current.execution_id:
        m.found_in_log["INV_007"].append(
            Violation(
                "INV_007",
                f"execution {event.execution_id} wrote {event.type} after execution "
                f"{current.execution_id} took job {event.job_id} with a newer token",
                Evidence(
                    (event.job_id,),
                    (event.execution_id, current.execution_id),
                    (current.seq, event.seq),
                ),
            )
        )
    elif event.execution_id in m.expires and event.at >= m.expires[event.execution_id]:
        m.found_in_log["INV_007"].append(
            Violation(
                "INV_007",
                f"execution {event.execution_id} wrote {event.type} at {event.at:.3f}, after "
                f"its lease expired at {m.expires[event.execution_id]:.3f}",
                Evidence((event.job_id,), (event.execution_id,), (event.seq,)),
            )
        )
    if event.type == "lease.extended":
        m.expires[event.execution_id] = event.detail["lease_expires_at"]


def check_fencing(m: Monitor, final: bool) -> list[Violation]:
    """INV_007: a holder of a lost lease cannot change state.

    The log is replayed as it is folded in (`fold_fencing`): after a job is leased with a
    newer token, or once a lease has expired, no write by the older holder may appear.
    """
    return list(m.found_in_log.get("INV_007", ()))


# --- INV_008 -------------------------------------------------------------------------

_BALANCES = (
    "SELECT a.name, a.balance, a.opened_balance,"
    " coalesce(sum(json_extract(e.detail, '$.amount')), 0), count(e.id),"
    " coalesce(group_concat(e.job_id), ''), coalesce(group_concat(e.execution_id), '')"
    " FROM accounts a LEFT JOIN effects e"
    " ON e.sink = 'accounts' AND json_extract(e.detail, '$.account') = a.name"
    " GROUP BY a.name ORDER BY a.name"
)
"""Per account: its balance, its opening balance, and the sum and count of the credits
recorded against it (with the jobs and executions that applied them)."""


def fold_balances(m: Monitor, event: Event) -> None:
    """Note which accounts exist and their credits, so INV_008 reads the balances only
    when one may have changed."""
    if event.type == "account.opened":
        m.accounts_opened[event.detail["account"]] = event.seq
        m.accounts_touched = True
    elif event.type == "account.credited":
        m.credits[event.detail["account"]].append(event)
        m.accounts_touched = True


def check_balances(m: Monitor, final: bool) -> list[Violation]:
    """INV_008: a balance equals its opening balance plus every credit recorded against it.

    The balance is the row; the credits are the effect records, which say what was applied
    whatever the row says. A database with no account opened has nothing to check (and may
    predate the accounts table)."""
    if not m.accounts_opened or not (final or m.accounts_touched):
        return []
    m.accounts_touched = False
    violations = []
    for name, balance, opened, credited, count, jobs, executions in m.store.tuples(_BALANCES):
        expected = opened + credited
        if balance == expected:
            continue
        credits = m.credits.get(name, [])
        violations.append(
            Violation(
                "INV_008",
                f"account {name} holds {balance}, but its opening balance {opened} plus its "
                f"{count} recorded credits come to {expected}: "
                + ("an update was lost" if balance < expected else "money appeared from nowhere"),
                Evidence(
                    tuple(sorted({int(j) for j in jobs.split(",") if j})),
                    tuple(sorted({int(x) for x in executions.split(",") if x})),
                    (m.accounts_opened[name], *(e.seq for e in credits)),
                ),
            )
        )
    return violations


# --- INV_009 -------------------------------------------------------------------------


class Retry(NamedTuple):
    at: float
    seq: int
    job: int
    execution: int


def fold_retry_load(m: Monitor, event: Event) -> None:
    """Note each dependency's stated bound, and every retry offered to it, in time order
    (a call is a retry when its attempt is not the job's first)."""
    if event.type == "dependency.declared":
        m.retry_bounds[event.detail["sink"]] = (
            event.detail["retries_max"],
            event.detail["window_s"],
            event.seq,
        )
    elif event.type == "dependency.called" and event.detail["attempt"] > 1:
        sink = event.detail["sink"]
        bisect.insort(
            m.retries[sink],
            Retry(event.at, event.seq, event.job_id or 0, event.execution_id or 0),
        )
        m.retries_touched.add(sink)


def densest(retries: list[Retry], window_s: float) -> list[Retry]:
    """The most retries that fall within one window of `window_s` seconds (the earliest
    such run, when several tie)."""
    best: list[Retry] = []
    start = 0
    for end, retry in enumerate(retries):
        while retry.at - retries[start].at >= window_s:
            start += 1
        if end + 1 - start > len(best):
            best = retries[start : end + 1]
    return best


def check_retry_load(m: Monitor, final: bool) -> list[Violation]:
    """INV_009: retries offered to a dependency stay within the bound it states.

    First attempts are the work itself; retries are the load a client adds on top, and
    the backoff decides whether they arrive together. Counted from our own log of the
    calls, against the bound the dependency declared."""
    if not m.retry_bounds:
        return []
    sinks = sorted(m.retries if final else m.retries_touched)
    m.retries_touched = set()
    violations = []
    for sink in sinks:
        if sink not in m.retry_bounds:
            continue
        retries_max, window_s, declared = m.retry_bounds[sink]
        burst = densest(m.retries[sink], window_s)
        if len(burst) <= retries_max:
            continue
        violations.append(
            Violation(
                "INV_009",
                f"{len(burst)} retries reached {sink} within {window_s:g} s (from "
                f"{burst[0].at:.3f} to {burst[-1].at:.3f}); it states at most {retries_max}",
                Evidence(
                    tuple(sorted({r.job for r in burst})),
                    tuple(sorted({r.execution for r in burst})),
                    (declared, *sorted(r.seq for r in burst)),
                ),
            )
        )
    return violations


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
        m.intents_touched = True


def check_intents_durable(m: Monitor, final: bool) -> list[Violation]:
    """INV_010: an acknowledged intent survives any crash, with its follow-up jobs, and no
    work exists for an intent the intent log does not hold."""
    if not (m.intents_touched or final) or m.store.schema_version() < 3:
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


# --- registry ------------------------------------------------------------------------

Checker = Callable[[Monitor, bool], list[Violation]]


@dataclass(frozen=True)
class Invariant:
    id: str
    statement: str
    kind: str
    checker: Checker
    fold: Callable[[Monitor, Event], None] | None = None
    """For a rule over the log itself: what it notes of each event as it is folded in."""
    folds_on: frozenset[str] | None = None
    """The event types its fold reads; None: every event."""


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "INV_001",
        "An effect (a sink and a key) is applied at most once.",
        "safety",
        check_effect_at_most_once,
    ),
    Invariant(
        "INV_002",
        "No irreversible effect without a durable record; a crash leaves detectable state.",
        "safety",
        check_effects_recorded,
    ),
    Invariant(
        "INV_003",
        "Only legal transitions, each one logged; the log is gap-free and append-only.",
        "safety",
        check_transitions_logged,
        fold_log,
    ),
    Invariant(
        "INV_004",
        "No lost and no lying work: every accepted job ends SUCCEEDED with its "
        "effect or DEAD with its reasons, and nothing stays RUNNING past its lease once "
        "the reaper ran.",
        "safety + liveness",
        check_no_lost_or_lying_work,
    ),
    Invariant(
        "INV_005",
        "Every failure leaves a detectable signal: an event carrying the error.",
        "safety",
        check_failures_signalled,
    ),
    Invariant(
        "INV_006",
        "Retries are bounded: at most max_attempts attempts between redrives.",
        "safety",
        check_retries_bounded,
    ),
    Invariant(
        "INV_007",
        "A holder of a lost lease cannot change state (fencing).",
        "safety",
        check_fencing,
        fold_fencing,
    ),
    Invariant(
        "INV_008",
        "A balance equals its opening balance plus every credit recorded against it.",
        "safety",
        check_balances,
        fold_balances,
        frozenset({"account.opened", "account.credited"}),
    ),
    Invariant(
        "INV_009",
        "Retries offered to a dependency stay within the bound it states for any window of time.",
        "safety",
        check_retry_load,
        fold_retry_load,
        frozenset({"dependency.declared", "dependency.called"}),
    ),
    Invariant(
        "INV_010",
        "An acknowledged intent survives any crash: it is in the intent log with its "
        "follow-up jobs, and no work exists for an intent the log does not hold.",
        "safety",
        check_intents_durable,
        fold_intents,
        frozenset({"intent.recorded", "job.submitted"}),
    ),
    Invariant(
        "INV_011",
        "Derived data equals a fresh recomputation from the log it was built from.",
        "safety",
        check_derived_fresh,
        fold_rebuilds,
        frozenset({"derived.rebuilt"}),
    ),
)
BY_ID = {inv.id: inv for inv in INVARIANTS}


def check(
    store: Store, *, final: bool = False, only: Iterable[str] | None = None
) -> list[Violation]:
    """Run the invariants over `store`; `final=True` adds the end-of-run liveness checks."""
    return Monitor(store, INVARIANTS).check(final=final, only=only)


def evidence_for(m: Monitor, what: str, subject: int | None, seq: int | None) -> Evidence:
    """A job's (or an execution's) evidence: the job, its executions, and the event `seq`."""
    seqs = () if seq is None else (seq,)
    if what == "job":
        executions = tuple(x["id"] for x in m.executions_of(subject))
        return Evidence(() if subject is None else (subject,), executions, seqs)
    execution = m.executions.get(subject)
    jobs = () if execution is None else (execution["job_id"],)
    return Evidence(jobs, () if subject is None else (subject,), seqs)
