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


@dataclass(frozen=True)
class History:
    """One consistent read of everything the checkers look at."""

    events: list[Event]
    jobs: dict[int, Any]
    executions: dict[int, Any]
    effects: list[Any]
    triggers: frozenset[str]


def read(store: Store) -> History:
    return History(
        events=store.events(),
        jobs={row["id"]: row for row in store.all("SELECT * FROM jobs ORDER BY id")},
        executions={row["id"]: row for row in store.all("SELECT * FROM executions ORDER BY id")},
        effects=store.all("SELECT * FROM effects ORDER BY id"),
        triggers=frozenset(
            r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ),
    )


# --- INV_001 -------------------------------------------------------------------------


def check_effect_at_most_once(h: History, final: bool) -> list[Violation]:
    """INV_001: a job's effect is applied at most once."""
    by_effect: dict[tuple[int, str, str], list[Any]] = defaultdict(list)
    for row in h.effects:
        by_effect[(row["job_id"], row["sink"], row["key"])].append(row)
    applied_seq = _effect_event_seqs(h)
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
                        tuple(applied_seq[r["id"]] for r in rows if r["id"] in applied_seq),
                    ),
                )
            )
    return violations


# --- INV_002 -------------------------------------------------------------------------


def check_effects_recorded(h: History, final: bool) -> list[Violation]:
    """INV_002: no irreversible effect without a durable record; a crash leaves a trace.

    Every effect has its `effect.applied` event and belongs to an execution of its job, and
    an execution that applied an effect has committed it: an effect left behind by an
    attempt that ended without committing is work the system does not know it did.
    """
    applied_seq = _effect_event_seqs(h)
    committed = {e.execution_id for e in h.events if e.type == "execution.committed"}
    violations = []
    for row in h.effects:
        effect, job, execution = row["id"], row["job_id"], row["execution_id"]
        owner = h.executions.get(execution)
        if effect not in applied_seq:
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
                    Evidence((job,), (execution,), _seqs(applied_seq, effect)),
                )
            )
        elif execution not in committed and (final or owner["status"] not in states.EXECUTION_OPEN):
            violations.append(
                Violation(
                    "INV_002",
                    f"execution {execution} applied job {job}'s effect {row['sink']}/{row['key']}"
                    f" but ended {owner['status']} without committing it",
                    Evidence((job,), (execution,), _seqs(applied_seq, effect)),
                )
            )
    return violations


# --- INV_003 -------------------------------------------------------------------------


def check_transitions_logged(h: History, final: bool) -> list[Violation]:
    """INV_003: only legal transitions, each one logged; the log gap-free and append-only."""
    violations = []
    missing = [name for name in APPEND_ONLY_TRIGGERS if name not in h.triggers]
    if missing:
        violations.append(
            Violation("INV_003", "the event log is not append-only: missing " + ", ".join(missing))
        )
    for expected, event in enumerate(h.events, start=1):
        if event.seq != expected:
            violations.append(
                Violation(
                    "INV_003",
                    f"the event log has a gap: seq {expected} missing before {event.seq}",
                    Evidence(events=(event.seq,)),
                )
            )
            break
    violations += _replay(
        h, "job", "job_state", states.JOB_TRANSITIONS, {i: r["state"] for i, r in h.jobs.items()}
    )
    violations += _replay(
        h,
        "execution",
        "execution_state",
        states.EXECUTION_TRANSITIONS,
        {i: r["status"] for i, r in h.executions.items()},
    )
    return violations


def _replay(
    h: History, what: str, key: str, legal: frozenset, stored: dict[int, str]
) -> list[Violation]:
    replayed: dict[int, str | None] = {}
    last_seq: dict[int, int] = {}
    violations = []
    for event in h.events:
        move = event.detail.get(key)
        if move is None:
            continue
        subject = event.job_id if what == "job" else event.execution_id
        before, after = move
        current = replayed.get(subject)
        if (before, after) not in legal:
            violations.append(
                Violation(
                    "INV_003",
                    f"{what} {subject} moved {before} -> {after}, which is illegal",
                    _evidence_for(h, what, subject, event.seq),
                )
            )
        elif before != current:
            violations.append(
                Violation(
                    "INV_003",
                    f"{what} {subject} moved {before} -> {after} but the log had it {current}",
                    _evidence_for(h, what, subject, event.seq),
                )
            )
        replayed[subject] = after
        last_seq[subject] = event.seq
    for subject, state in stored.items():
        if replayed.get(subject) != state:
            violations.append(
                Violation(
                    "INV_003",
                    f"{what} {subject} is {state} but its logged history ends at "
                    f"{replayed.get(subject)}: a transition was not logged",
                    _evidence_for(h, what, subject, last_seq.get(subject)),
                )
            )
    return violations


# --- INV_004 -------------------------------------------------------------------------


def check_no_lost_or_lying_work(h: History, final: bool) -> list[Violation]:
    """INV_004: no lost and no lying work.

    Every SUCCEEDED job has its effect; every DEAD job carries its reasons; no job stays
    RUNNING on a lease that had expired when the reaper swept; and once the run is over
    (`final`), every accepted job has ended SUCCEEDED or DEAD.
    """
    violations = []
    effects_of: dict[int, int] = defaultdict(int)
    for row in h.effects:
        effects_of[row["job_id"]] += 1
    last_sweep = max(
        (e for e in h.events if e.type == "reaper.swept"), key=lambda e: e.seq, default=None
    )
    for job_id, job in h.jobs.items():
        state = job["state"]
        if state == states.SUCCEEDED and effects_of[job_id] == 0:
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is SUCCEEDED but no effect of it was ever applied",
                    _evidence_for(h, "job", job_id, None),
                )
            )
        if state == states.DEAD and (not job["last_error"] or not _error_events(h, job_id)):
            violations.append(
                Violation(
                    "INV_004",
                    f"job {job_id} is DEAD without the reasons it died",
                    _evidence_for(h, "job", job_id, None),
                )
            )
        if state == states.RUNNING and last_sweep is not None:
            for execution in _open_executions(h, job_id):
                if execution["lease_expires_at"] <= last_sweep.at:
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
                    _evidence_for(h, "job", job_id, None),
                )
            )
    return violations


# --- INV_005 -------------------------------------------------------------------------


def check_failures_signalled(h: History, final: bool) -> list[Violation]:
    """INV_005: every failure leaves a detectable signal: an event carrying the error."""
    violations = []
    for execution_id, execution in h.executions.items():
        if execution["status"] not in (states.FAILED, states.ABORTED):
            continue
        signals = [
            e
            for e in h.events
            if e.execution_id == execution_id
            and e.detail.get("error")
            and (e.detail.get("execution_state") or [None, None])[1] == execution["status"]
        ]
        if not signals:
            violations.append(
                Violation(
                    "INV_005",
                    f"execution {execution_id} of job {execution['job_id']} ended "
                    f"{execution['status']} and no event says why",
                    Evidence((execution["job_id"],), (execution_id,)),
                )
            )
    for job_id, job in h.jobs.items():
        error = job["last_error"]
        if error and not any(e.detail.get("error") == error for e in _error_events(h, job_id)):
            violations.append(
                Violation(
                    "INV_005",
                    f"job {job_id}'s last error {error!r} appears in no event",
                    _evidence_for(h, "job", job_id, None),
                )
            )
    return violations


# --- INV_006 -------------------------------------------------------------------------


def check_retries_bounded(h: History, final: bool) -> list[Violation]:
    """INV_006: retries are bounded: at most max_attempts attempts between redrives."""
    leases: dict[int, list[Event]] = defaultdict(list)
    for event in h.events:
        if event.type == "job.redriven":
            leases[event.job_id] = []
        elif event.type == "job.leased":
            leases[event.job_id].append(event)
    violations = []
    for job_id, job in h.jobs.items():
        attempts_max = job["max_attempts"]
        taken = leases.get(job_id, [])
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


def check_fencing(h: History, final: bool) -> list[Violation]:
    """INV_007: a holder of a lost lease cannot change state.

    Replays the log: after a job is leased with a newer token, or once a lease has expired,
    no write by the older holder may appear.
    """
    newest: dict[int, Event] = {}
    expires: dict[int, float] = {}
    violations = []
    for event in h.events:
        if event.type == "job.leased":
            newest[event.job_id] = event
            expires[event.execution_id] = event.detail["lease_expires_at"]
            continue
        if event.type not in WORKER_WRITES or event.worker == REAPER or event.job_id is None:
            continue
        current = newest.get(event.job_id)
        if current is not None and event.execution_id != current.execution_id:
            violations.append(
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
        elif event.execution_id in expires and event.at >= expires[event.execution_id]:
            violations.append(
                Violation(
                    "INV_007",
                    f"execution {event.execution_id} wrote {event.type} at {event.at:.3f}, after "
                    f"its lease expired at {expires[event.execution_id]:.3f}",
                    Evidence((event.job_id,), (event.execution_id,), (event.seq,)),
                )
            )
        if event.type == "lease.extended":
            expires[event.execution_id] = event.detail["lease_expires_at"]
    return violations


# --- registry ------------------------------------------------------------------------

Checker = Callable[[History, bool], list[Violation]]


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
    history = read(store)
    chosen = INVARIANTS if only is None else tuple(BY_ID[i] for i in only)
    return [v for inv in chosen for v in inv.checker(history, final)]


# --- helpers -------------------------------------------------------------------------


def _effect_event_seqs(h: History) -> dict[int, int]:
    return {e.detail["effect"]: e.seq for e in h.events if e.type == "effect.applied"}


def _seqs(applied_seq: dict[int, int], effect: int) -> tuple[int, ...]:
    return (applied_seq[effect],) if effect in applied_seq else ()


def _error_events(h: History, job_id: int) -> list[Event]:
    return [e for e in h.events if e.job_id == job_id and e.detail.get("error")]


def _open_executions(h: History, job_id: int) -> list[Any]:
    return [
        x
        for x in h.executions.values()
        if x["job_id"] == job_id and x["status"] in states.EXECUTION_OPEN
    ]


def _evidence_for(h: History, what: str, subject: int | None, seq: int | None) -> Evidence:
    seqs = () if seq is None else (seq,)
    if what == "job":
        executions = tuple(i for i, x in h.executions.items() if x["job_id"] == subject)
        return Evidence(() if subject is None else (subject,), executions, seqs)
    execution = h.executions.get(subject)
    jobs = () if execution is None else (execution["job_id"],)
    return Evidence(jobs, () if subject is None else (subject,), seqs)
