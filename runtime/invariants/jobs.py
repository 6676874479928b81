"""INV_001 to INV_007: the job queue's own guarantees, over its rows and its event log."""

from runtime import states
from runtime.invariants.evidence import Evidence, Violation, evidence_for
from runtime.monitor import JobView, Monitor
from runtime.queue import REAPER
from runtime.store import Event

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


# --- INV_001 -------------------------------------------------------------------------


def check_effect_at_most_once(m: Monitor, final: bool) -> list[Violation]:
    """INV_001: an effect (a sink and a key) is applied at most once, by whichever job:
    the key names the logical effect (order 1001's points), so two jobs for one order
    applying it twice is the same duplicate as one job applying it twice.

    A key's verdict moves only when an effect is written under it: each check looks at the
    keys of the effects written since the last one (the final check, at every key)."""
    keys: dict[tuple[str, str], None] = {}
    if final:
        for job in m.dirty:
            for row in job.effects:
                keys[row["sink"], row["key"]] = None
    else:
        for effect in m.mirror.fresh_effects:
            row = m.effects.get(effect)
            if row is not None:
                keys[row["sink"], row["key"]] = None
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
    if not m.triggers.issuperset(APPEND_ONLY_TRIGGERS):
        missing = [name for name in APPEND_ONLY_TRIGGERS if name not in m.triggers]
        violations.append(
            Violation("INV_003", "the event log is not append-only: missing " + ", ".join(missing))
        )
    found = m.found_in_log
    if found:
        violations += found.get("gap", ())
        violations += found.get("INV_003", ())
    jobs, executions = m.replayed["job"], m.replayed["execution"]
    for view in m.dirty:  # every job's row first, then every execution's
        if view.row is not None and jobs.get(view.id) != view.row["state"]:
            violations.append(_unlogged(m, "job", view.row["id"], view.row["state"]))
    for view in m.dirty:
        for row in view.executions:
            if executions.get(row["id"]) != row["status"]:
                violations.append(_unlogged(m, "execution", row["id"], row["status"]))
    return violations


def _unlogged(m: Monitor, what: str, subject: int, state: str) -> Violation:
    replayed = m.replayed[what].get(subject)
    return Violation(
        "INV_003",
        f"{what} {subject} is {state} but its logged history ends at {replayed}: a "
        "transition was not logged",
        evidence_for(m, what, subject, m.replayed_seq[what].get(subject)),
    )


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


_ENDED = frozenset((states.FAILED, states.ABORTED))


def check_failures_signalled(m: Monitor, final: bool) -> list[Violation]:
    """INV_005: every failure leaves a detectable signal: an event carrying the error. The
    event that ends a failed attempt carries that attempt's own error (a dead job's summary
    that names no cause is not a signal of what happened).

    A verdict found clean is kept (`Monitor.signalled`) and not worked out again while the
    row says the same: error events are only ever added, and more of them cannot take a
    signal away."""
    violations = []
    signalled = m.signalled
    for execution in [x for job in m.dirty for x in job.executions if x["status"] in _ENDED]:
        execution_id, status = execution["id"], execution["status"]
        said = (status, execution["error"])
        if signalled.get(("execution", execution_id)) == said:
            continue
        ending = [
            e
            for e in m.error_events.get(execution["job_id"], ())
            if e.execution_id == execution_id
            and (e.detail.get("execution_state") or [None, None])[1] == status
        ]
        cause = execution["error"] or ""
        if ending and any(cause in e.detail["error"] for e in ending):
            signalled["execution", execution_id] = said
        elif not ending:
            violations.append(
                Violation(
                    "INV_005",
                    f"execution {execution_id} of job {execution['job_id']} ended "
                    f"{status} and no event says why",
                    Evidence((execution["job_id"],), (execution_id,)),
                )
            )
        else:
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
        if not error or signalled.get(("job", job_id)) == (error,):
            continue
        if any(e.detail["error"] == error for e in m.error_events.get(job_id, ())):
            signalled["job", job_id] = (error,)
        else:
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
