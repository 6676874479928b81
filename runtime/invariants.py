"""The invariants, as code: each checker reads durable state and the event log.

Prior art: Hypothesis invariants, TigerBeetle's "check on write, check again on read".
The runtime refuses bad writes as it makes them; these checkers verify again, from what
the database holds, that the guarantees held. A repro test asserts a named INV_XXX *is*
reported (with evidence: jobs, executions, event seqs); a prevent test asserts none are.
The same checkers run in tests, in the simulator after every step, and in `fmlab check`.

Checkers never read fault annotations (`fault.*` events): a failure must be detectable from
what the runtime itself recorded, not from what the test harness knows it broke.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime import states
from runtime.queue import REAPER
from runtime.store import Event, Store
from runtime.store import event as store_event

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


COLUMNS: dict[str, tuple[str, ...]] = {
    "jobs": ("id", "state", "attempts", "max_attempts", "run_at", "fencing_token", "last_error"),
    "executions": ("id", "job_id", "status", "fencing_token", "lease_expires_at"),
    "effects": ("id", "sink", "key", "job_id", "execution_id"),
    "events": ("seq", "at", "type", "job_id", "execution_id", "worker", "detail"),
}
"""The columns the checkers read, per table."""
ROWS = ("jobs", "executions", "effects")
"""The tables whose current rows the checkers keep; the events are folded in instead."""


@dataclass(frozen=True)
class JobView:
    """One job as a check sees it: its row (None if it has none), executions and effects."""

    id: int
    row: dict[str, Any] | None
    executions: list[dict[str, Any]]
    effects: list[dict[str, Any]]


class Monitor:
    """The invariants, watching one store as it changes.

    What the checkers need from the event log (who applied what, which executions
    committed, which errors were logged, the replayed state of every job and execution)
    is folded in one event at a time, so checking after every step of a simulated run
    costs the step's new events, not the whole history again.

    Rows are another matter: a write that changed a job without logging it must be seen
    the step it happens, so the log cannot say which rows to look at. A fresh Monitor
    reads every row; a watching one (`watch=True`, for in-memory simulation stores) has
    the database itself say what changed: triggers copy each written row into a change
    table that every check drains. Only the jobs, executions and effects touched
    since the last check are checked again; what they did not touch cannot have changed.

    A fresh Monitor folds the whole log at once: that is `check()`, the batch check. The
    same code serves both, so the per-step check and the batch check cannot disagree.
    """

    def __init__(self, store: Store, *, watch: bool = False) -> None:
        self.store = store
        self.watch = watch
        self.seq = 0
        self.fresh: list[Event] = []
        """The events the latest check folded in."""
        self.jobs: dict[int, dict[str, Any]] = {}
        self.executions: dict[int, dict[str, Any]] = {}
        self.effects: dict[int, dict[str, Any]] = {}
        self.executions_by_job: dict[int, list[int]] = defaultdict(list)
        self.effects_by_job: dict[int, list[int]] = defaultdict(list)
        self.dirty: list[JobView] = []
        """The jobs whose rows, executions, effects or events changed since the last check:
        the only ones whose verdict can have changed."""
        self.triggers: frozenset[str] = frozenset()
        self._schema_version = -1
        self._read_all = True
        self._change = 0
        """The number of the last change read from `fmlab_changes` (when watching)."""
        # Folded from the log.
        self.applied_seq: dict[int, int] = {}
        self.committed: set[int] = set()
        self.error_events: dict[int, list[Event]] = defaultdict(list)
        self.leases: dict[int, list[Event]] = defaultdict(list)
        self.last_sweep: Event | None = None
        self.replayed: dict[str, dict[int, str | None]] = {"job": {}, "execution": {}}
        self.replayed_seq: dict[str, dict[int, int]] = {"job": {}, "execution": {}}
        self.newest_lease: dict[int, Event] = {}
        self.expires: dict[int, float] = {}
        self.lease_seq: dict[int, int] = {}
        """Per execution, the seq of the event that granted or last extended its lease."""
        self.found_in_log: dict[str, list[Violation]] = defaultdict(list)
        if watch:
            _watch(store)

    def check(self, *, final: bool = False, only: Iterable[str] | None = None) -> list[Violation]:
        """Fold in what is new, then run the invariants over the store as it is now.

        Violations of the log itself (an illegal move, a stale write) are reported by the
        check that first folds them in; violations of the current state, by the checks
        after the rows involved changed. `final` checks every row again.
        """
        jobs, self.fresh = self._read(final)
        self.found_in_log = defaultdict(list)
        if not jobs and not self.fresh and not final:
            self.dirty = []
            return []  # nothing was written since the last check, so nothing new is broken
        swept = False
        for event in self.fresh:
            self._fold(event)
            swept = swept or event.type == "reaper.swept"
            if event.job_id is not None:
                jobs.add(event.job_id)
            elif event.execution_id in self.executions:
                jobs.add(self.executions[event.execution_id]["job_id"])
        if final or swept:  # a sweep may condemn any RUNNING job
            jobs.update(self.jobs)
        self.dirty = [
            JobView(job, self.jobs.get(job), self.executions_of(job), self.effects_of(job))
            for job in sorted(jobs)
        ]
        chosen = INVARIANTS if only is None else tuple(BY_ID[i] for i in only)
        return [v for inv in chosen for v in inv.checker(self, final)]

    def _read(self, final: bool) -> tuple[set[int], list[Event]]:
        """Bring the rows up to date and fetch the new events; returns the ids of the jobs
        whose rows, executions or effects changed, and the events."""
        store = self.store
        if final or self._read_all or not self.watch:
            version = store.one("PRAGMA schema_version")[0]
            if version != self._schema_version:
                self._schema_version = version
                self.triggers = frozenset(
                    r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                )
        if not self._read_all:
            jobs: set[int] = set()
            events = []
            changes = store.tuples(_CHANGES, (self._change,))
            for change in changes:
                if change[0] == "events":
                    events.append(store_event(*change[1:8]))
                else:
                    jobs.add(self._apply(change))
            if changes:
                self._change = changes[-1][-1]
            return jobs, events
        self._read_all = not self.watch
        if self.watch:
            self._change = store.one("SELECT coalesce(max(n), 0) FROM fmlab_changes")[0]
        for table in ROWS:
            getattr(self, table).clear()
        self.executions_by_job.clear()
        self.effects_by_job.clear()
        jobs = set()
        for table in ROWS:
            columns = COLUMNS[table]
            for row in store.all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"):
                jobs.add(self._apply((table, *row)))
        return jobs, store.events(self.seq)

    def _apply(self, change: tuple[Any, ...]) -> int:
        """Put one changed row in place (a deletion when all but its id is NULL); returns
        the id of the job it belongs to."""
        table, row_id = change[0], change[1]
        rows: dict[int, dict[str, Any]] = getattr(self, table)
        columns = COLUMNS[table]
        old = rows.get(row_id)
        if change[2] is None:  # NOT NULL in every table watched: this row was deleted
            rows.pop(row_id, None)
            if old is None:
                return row_id if table == "jobs" else -1
            return row_id if table == "jobs" else old["job_id"]
        row = dict(zip(columns, change[1 : 1 + len(columns)], strict=True))
        rows[row_id] = row
        if table == "jobs":
            return row_id
        if old is None or old["job_id"] != row["job_id"]:
            by_job = self.executions_by_job if table == "executions" else self.effects_by_job
            by_job[row["job_id"]].append(row_id)
        return row["job_id"]

    def _fold(self, event: Event) -> None:
        if event.seq != self.seq + 1 and not self.found_in_log["gap"]:
            self.found_in_log["gap"].append(
                Violation(
                    "INV_003",
                    f"the event log has a gap: seq {self.seq + 1} missing before {event.seq}",
                    Evidence(events=(event.seq,)),
                )
            )
        self.seq = event.seq
        kind = event.type
        if kind == "effect.applied":
            self.applied_seq[event.detail["effect"]] = event.seq
        elif kind == "execution.committed":
            self.committed.add(event.execution_id)
        elif kind == "reaper.swept":
            self.last_sweep = event
        elif kind == "job.redriven":
            self.leases[event.job_id] = []
        elif kind == "job.leased":
            self.leases[event.job_id].append(event)
            self.lease_seq[event.execution_id] = event.seq
        elif kind == "lease.extended":
            self.lease_seq[event.execution_id] = event.seq
        if event.job_id is not None and event.detail.get("error"):
            self.error_events[event.job_id].append(event)
        _fold_moves(self, event)
        _fold_fencing(self, event)

    # Evidence helpers.

    def executions_of(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.executions
        ids = self.executions_by_job.get(job_id, ())
        return [rows[i] for i in ids if i in rows and rows[i]["job_id"] == job_id]

    def effects_of(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.effects
        ids = self.effects_by_job.get(job_id, ())
        return [rows[i] for i in ids if i in rows and rows[i]["job_id"] == job_id]

    def evidence_for(self, what: str, subject: int | None, seq: int | None) -> Evidence:
        seqs = () if seq is None else (seq,)
        if what == "job":
            executions = tuple(x["id"] for x in self.executions_of(subject))
            return Evidence(() if subject is None else (subject,), executions, seqs)
        execution = self.executions.get(subject)
        jobs = () if execution is None else (execution["job_id"],)
        return Evidence(jobs, () if subject is None else (subject,), seqs)

    def seqs_of_effect(self, effect: int) -> tuple[int, ...]:
        seq = self.applied_seq.get(effect)
        return () if seq is None else (seq,)


_WIDTH = max(len(columns) for columns in COLUMNS.values())
VERBS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
WATCH_PREFIX = "fmlab_watch_"
_SLOTS = ", ".join(f"c{i}" for i in range(1, _WIDTH + 1))
_CHANGES = f"SELECT tbl, {_SLOTS}, n FROM fmlab_changes WHERE n > ? ORDER BY n"
"""Every change captured after change `?`, in the order it was written. The table only
grows during a run (a read is cheaper than a delete); wiping the store empties it."""


def _watch(store: Store) -> None:
    """Triggers that copy every written row into the table `fmlab_changes`.

    They write in the writer's own transaction, so a rolled-back write leaves no change
    behind, and the change table's columns have no type, so every value keeps its exact
    storage class. They are for in-memory simulation stores only, where the simulator
    makes them once per process and copies the database image with them in it; `unwatch`
    removes them before a simulated run is saved to a file.
    """
    if store.path != ":memory:":
        raise ValueError("only an in-memory simulation store is watched")
    if store.one("SELECT 1 FROM sqlite_master WHERE name = 'fmlab_changes'"):
        return
    statements = [f"CREATE TABLE fmlab_changes (n INTEGER PRIMARY KEY, tbl, {_SLOTS})"]
    for table, columns in COLUMNS.items():
        names = ", ".join(f"c{i}" for i in range(1, len(columns) + 1))
        verbs = (("INSERT", "NEW"),) if table == "events" else VERBS
        for verb, row in verbs:
            values = (
                ", ".join(f"{row}.{c}" for c in columns)
                if verb != "DELETE"
                else ", ".join([f"{row}.id", *(["NULL"] * (len(columns) - 1))])
            )
            statements.append(
                f"CREATE TRIGGER {WATCH_PREFIX}{table}_{verb.lower()} AFTER {verb} ON {table}"
                f" BEGIN INSERT INTO fmlab_changes (tbl, {names}) VALUES ('{table}', {values}); END"
            )
    for statement in statements:
        store.all(statement)


def unwatch(store: Store) -> None:
    """Remove what `Monitor(watch=True)` added, leaving a plain lab database."""
    for (name,) in store.all(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
        (WATCH_PREFIX + "%",),
    ):
        store.all(f"DROP TRIGGER {name}")
    store.all("DROP TABLE IF EXISTS fmlab_changes")


# --- INV_001 -------------------------------------------------------------------------


def check_effect_at_most_once(m: Monitor, final: bool) -> list[Violation]:
    """INV_001: a job's effect is applied at most once."""
    by_effect: dict[tuple[int, str, str], list[Any]] = defaultdict(list)
    for job in m.dirty:
        for row in job.effects:
            by_effect[(job.id, row["sink"], row["key"])].append(row)
    violations = []
    for (job, sink, key), rows in by_effect.items():
        if len(rows) > 1:
            executions = tuple(r["execution_id"] for r in rows)
            violations.append(
                Violation(
                    "INV_001",
                    f"job {job}'s effect {sink}/{key} was applied {len(rows)} times, by executions "
                    + " and ".join(map(str, executions)),
                    Evidence(
                        (job,),
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
    """
    violations = []
    for row in (row for job in m.dirty for row in job.effects):
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
        elif execution not in m.committed and (
            final or owner["status"] not in states.EXECUTION_OPEN
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


def _fold_moves(m: Monitor, event: Event) -> None:
    """Replay the logged moves; a move that is illegal or starts from the wrong state is
    a violation of the log itself."""
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
                    m.evidence_for(what, subject, event.seq),
                )
            )
        elif before != current:
            m.found_in_log["INV_003"].append(
                Violation(
                    "INV_003",
                    f"{what} {subject} moved {before} -> {after} but the log had it {current}",
                    m.evidence_for(what, subject, event.seq),
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
    violations += m.found_in_log["gap"]
    violations += m.found_in_log["INV_003"]
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
                        m.evidence_for(what, subject, m.replayed_seq[what].get(subject)),
                    )
                )
    return violations


# --- INV_004 -------------------------------------------------------------------------


def check_no_lost_or_lying_work(m: Monitor, final: bool) -> list[Violation]:
    """INV_004: no lost and no lying work.

    Every SUCCEEDED job has its effect; every DEAD job carries its reasons; no job stays
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
        if state == states.SUCCEEDED and not view.effects:
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is SUCCEEDED but no effect of it was ever applied",
                    m.evidence_for("job", job_id, None),
                )
            )
        if state == states.DEAD and (not job["last_error"] or not m.error_events.get(job_id)):
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is DEAD without the reasons it died",
                    m.evidence_for("job", job_id, None),
                )
            )
        if state == states.RUNNING and last_sweep is not None:
            for execution in view.executions:
                if (
                    execution["status"] in states.EXECUTION_OPEN
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
                    m.evidence_for("job", job_id, None),
                )
            )
    return violations


# --- INV_005 -------------------------------------------------------------------------


def check_failures_signalled(m: Monitor, final: bool) -> list[Violation]:
    """INV_005: every failure leaves a detectable signal: an event carrying the error."""
    violations = []
    for execution in (x for job in m.dirty for x in job.executions):
        execution_id, status = execution["id"], execution["status"]
        if status not in (states.FAILED, states.ABORTED):
            continue
        signalled = any(
            e.execution_id == execution_id
            and (e.detail.get("execution_state") or [None, None])[1] == status
            for e in m.error_events.get(execution["job_id"], ())
        )
        if not signalled:
            violations.append(
                Violation(
                    "INV_005",
                    f"execution {execution_id} of job {execution['job_id']} ended "
                    f"{status} and no event says why",
                    Evidence((execution["job_id"],), (execution_id,)),
                )
            )
    for view in m.dirty:
        job_id, error = view.id, view.row and view.row["last_error"]
        if error and not any(e.detail["error"] == error for e in m.error_events.get(job_id, ())):
            violations.append(
                Violation(
                    "INV_005",
                    f"job {job_id}'s last error {error!r} appears in no event",
                    m.evidence_for("job", job_id, None),
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
        taken = m.leases.get(job_id, [])
        if len(taken) > attempts_max or job["attempts"] > attempts_max:
            violations.append(
                Violation(
                    "INV_006",
                    f"job {job_id} was attempted {max(len(taken), job['attempts'])} times; its "
                    f"budget is {attempts_max}",
                    Evidence(
                        (job_id,), tuple(e.execution_id for e in taken), tuple(e.seq for e in taken)
                    ),
                )
            )
    return violations


# --- INV_007 -------------------------------------------------------------------------


def _fold_fencing(m: Monitor, event: Event) -> None:
    """Replay the log: after a job is leased with a newer token, or once a lease has
    expired, no write by the older holder may appear."""
    if event.type == "job.leased":
        m.newest_lease[event.job_id] = event
        m.expires[event.execution_id] = event.detail["lease_expires_at"]
        return
    if event.type not in WORKER_WRITES or event.worker == REAPER or event.job_id is None:
        return
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

    The log is replayed as it is folded in (`_fold_fencing`): after a job is leased with a
    newer token, or once a lease has expired, no write by the older holder may appear.
    """
    return list(m.found_in_log["INV_007"])


# --- registry ------------------------------------------------------------------------

Checker = Callable[[Monitor, bool], list[Violation]]


@dataclass(frozen=True)
class Invariant:
    id: str
    statement: str
    kind: str
    checker: Checker


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "INV_001", "A job's effect is applied at most once.", "safety", check_effect_at_most_once
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
    ),
)
BY_ID = {inv.id: inv for inv in INVARIANTS}


def check(
    store: Store, *, final: bool = False, only: Iterable[str] | None = None
) -> list[Violation]:
    """Run the invariants over `store`; `final=True` adds the end-of-run liveness checks."""
    return Monitor(store).check(final=final, only=only)
