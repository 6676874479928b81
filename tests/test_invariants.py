"""Each invariant checker, shown to catch what it claims to catch.

A checker that never fires proves nothing. So for every INV_XXX these tests forge a history
that breaks it, writing straight to the database (`store.transaction()`, `tx.execute`,
`tx.event`) the way a buggy runtime would, past every guard in runtime.queue; and they
assert the checker names that invariant with the right evidence (jobs, executions, event
seqs). Each forgery breaks one thing only, so each test expects exactly one violation. A
real run through Queue and Worker, using every verb, must report nothing at all.
"""

import random

import pytest

from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import LeaseLost
from runtime.invariants import APPEND_ONLY_TRIGGERS, INVARIANTS, Evidence, Violation, check
from runtime.monitor import Monitor
from runtime.queue import REAPER, Job, Lease, Queue
from runtime.store import Event, Store, Tx
from runtime.worker import Worker
from tests.support import ORDER, POINTS, POLICIES, new_queue


def the_violation(store: Store, inv: str, *, final: bool = False) -> Violation:
    """The one violation the forgery should cause; anything else found is a test bug."""
    found = check(store, final=final)
    assert [v.inv for v in found] == [inv], [str(v) for v in found]
    return found[0]


def last(store: Store, type: str, **fields: object) -> Event:
    """The last event of `type` (matching e.g. execution_id=2)."""
    matching = [
        e
        for e in store.events()
        if e.type == type and all(getattr(e, k) == v for k, v in fields.items())
    ]
    assert matching, f"no {type} event with {fields}"
    return matching[-1]


def succeeded(queue: Queue, worker: str = "w1") -> Lease:
    """Run the next ready job to SUCCEEDED through the real queue; returns its lease."""
    lease = queue.lease(worker)
    queue.start(lease)
    queue.commit(lease, POINTS)
    queue.ack(lease)
    return lease


def forge_effect(tx: Tx, at: float, *, job: int, execution: int, key: str = "order-1001") -> int:
    """An effect row and its `effect.applied` event, written by hand; returns the seq."""
    cursor = tx.execute(
        "INSERT INTO effects (sink, key, job_id, execution_id, detail, at)"
        " VALUES ('ledger', ?, ?, ?, '{}', ?)",
        (key, job, execution, at),
    )
    return tx.event(
        at,
        "effect.applied",
        job=job,
        execution=execution,
        worker="w1",
        sink="ledger",
        key=key,
        effect=cursor.lastrowid,
    )


def test_there_are_thirteen_invariants_in_order():
    assert [inv.id for inv in INVARIANTS] == [f"INV_{n:03d}" for n in range(1, 14)]
    assert all(inv.statement.endswith(".") for inv in INVARIANTS)


# --- a clean history ------------------------------------------------------------------


def award_points(job: Job) -> Effect:
    return Effect(sink="ledger", key=f"order-{job.payload['order']}", detail=job.payload)


def send_mail(job: Job) -> Effect:
    raise ConnectionError("554 relay down")


def clean_history() -> Queue:
    """A real run that uses every verb: success, an idempotent resubmit, a heartbeat, a
    crash rescued by the reaper, a late write refused by fencing, retries, a dead letter
    and a redrive. Every job ends SUCCEEDED or DEAD."""
    queue, clock = new_queue(seed=11)
    handlers = {"award_points": award_points, "send_mail": send_mail}
    w1, w2 = Worker("w1", queue, handlers), Worker("w2", queue, handlers)
    queue.submit("award_points", {"order": 1001}, idempotency_key="order-1001")
    queue.submit("award_points", {"order": 1001}, idempotency_key="order-1001")  # absorbed
    queue.submit("award_points", {"order": 1002})
    queue.submit("send_mail", {"user": 7}, max_attempts=2)

    assert w1.run_one()[-1] == "acked"  # order 1001
    stalled = w2.attempt()  # order 1002: w2 leases and starts, then stops answering
    assert [next(stalled), next(stalled)] == ["leased", "started"]
    assert w1.run_one()[-1] == "failed"  # the mail, first attempt: retry within a second
    clock.advance(POLICIES.lease_s)
    assert queue.reap() == [2]  # w2's lease ran out: order 1002 goes back to the queue
    assert w1.run_one()[-1] == "failed"  # the mail again: 2 attempts spent, DEAD
    assert w1.run_one()[-1] == "acked"  # order 1002, second attempt
    assert list(stalled) == ["effect_applied", "lease_lost"]  # w2 wakes; its commit is refused
    queue.redrive(3, reason="relay reported fixed", by="alice")
    lease = queue.lease("w2")
    clock.advance(20.0)
    lease = queue.heartbeat(lease)  # a slow handler keeps its lease alive
    clock.advance(20.0)
    queue.start(lease)
    queue.fail(lease, "ConnectionError: 554 relay down")  # still down...
    clock.set(queue.get(3).run_at)
    assert w1.run_one()[-1] == "failed"  # ...and dead again, with every reason kept
    queue.reap()
    assert [job.state for job in queue.jobs()] == ["SUCCEEDED", "SUCCEEDED", "DEAD"]
    return queue


def test_the_clean_history_uses_every_verb():
    """Otherwise "reports nothing" below would prove less than it seems."""
    types = {e.type for e in clean_history().store.events()}
    assert types >= {
        "job.submitted",
        "job.submit_absorbed",
        "job.leased",
        "execution.started",
        "effect.applied",
        "execution.committed",
        "job.succeeded",
        "job.retry_scheduled",
        "job.dead",
        "lease.extended",
        "lease.expired",
        "lease.lost",
        "reaper.swept",
        "job.redriven",
    }


@pytest.mark.parametrize("inv", [inv.id for inv in INVARIANTS])
def test_a_real_run_reports_nothing(inv):
    store = clean_history().store
    assert check(store, final=True, only=[inv]) == []


# --- INV_001: an effect at most once --------------------------------------------------


def test_inv_001_finds_an_effect_applied_twice():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    lease = succeeded(queue)
    first = last(queue.store, "effect.applied").seq
    with queue.store.transaction() as tx:  # the ledger entry, written a second time
        second = forge_effect(tx, 0.0, job=1, execution=lease.execution_id)

    violation = the_violation(queue.store, "INV_001")

    assert "job 1's effect ledger/order-1001 was applied 2 times" in violation.message
    assert violation.evidence.jobs == (1,)
    assert violation.evidence.executions == (1, 1)
    assert violation.evidence.events == (first, second)


# --- INV_002: no effect without its record --------------------------------------------


def test_inv_002_finds_an_effect_left_by_an_attempt_that_never_committed():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    queue.start(lease)
    with queue.store.transaction() as tx:  # the effect lands outside any commit...
        seq = forge_effect(tx, 0.0, job=1, execution=1)
    queue.fail(lease, "TimeoutError: ledger")  # ...and the attempt ends without one

    violation = the_violation(queue.store, "INV_002")

    assert "execution 1 applied job 1's effect ledger/order-1001" in violation.message
    assert "ended FAILED without committing it" in violation.message
    assert violation.evidence == Evidence((1,), (1,), (seq,))


def test_inv_002_waits_for_the_end_of_the_run_while_the_execution_is_open():
    """Mid-run an uncommitted effect may still be committed; at the end it is an orphan."""
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    queue.start(queue.lease("w1"))
    with queue.store.transaction() as tx:
        seq = forge_effect(tx, 0.0, job=1, execution=1)

    assert check(queue.store, final=False) == []
    [orphan] = [v for v in check(queue.store, final=True) if v.inv == "INV_002"]
    assert "ended IN_PROGRESS without committing" in orphan.message
    assert orphan.evidence.events == (seq,)


def test_inv_002_finds_an_effect_with_no_event():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    lease = succeeded(queue)
    with queue.store.transaction() as tx:  # a silent write: a row, no log entry
        tx.execute(
            "INSERT INTO effects (sink, key, job_id, execution_id, detail, at)"
            " VALUES ('ledger', 'order-1001-bonus', 1, ?, '{}', 0.0)",
            (lease.execution_id,),
        )

    violation = the_violation(queue.store, "INV_002")

    assert violation.message == "effect 2 of job 1 has no effect.applied event"
    assert (violation.evidence.jobs, violation.evidence.executions) == ((1,), (1,))


def test_inv_002_finds_an_effect_credited_to_another_jobs_execution():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    queue.submit("award_points", {"order": 1002, "points": 50})
    succeeded(queue)  # job 1, execution 1
    with queue.store.transaction() as tx:
        seq = forge_effect(tx, 0.0, job=2, execution=1, key="order-1002")

    violation = the_violation(queue.store, "INV_002")

    assert violation.message == "effect 2 names execution 1, not one of job 2"
    assert (violation.evidence.jobs, violation.evidence.executions) == ((2,), (1,))
    assert violation.evidence.events == (seq,)


# --- INV_003: legal, logged, gap-free, append-only -------------------------------------


@pytest.mark.parametrize("trigger", APPEND_ONLY_TRIGGERS)
def test_inv_003_finds_the_log_no_longer_append_only(trigger):
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    with queue.store.transaction() as tx:
        tx.execute(f"DROP TRIGGER {trigger}")

    violation = the_violation(queue.store, "INV_003")

    assert violation.message == f"the event log is not append-only: missing {trigger}"


def test_inv_003_finds_a_gap_in_the_log():
    """seq is the INTEGER PRIMARY KEY: an explicit seq skips one, as a lost write would."""
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)  # seq 1
    with queue.store.transaction() as tx:
        tx.execute("INSERT INTO events (seq, at, type, detail) VALUES (3, 0.0, 'lab.noted', '{}')")

    violation = the_violation(queue.store, "INV_003")

    assert violation.message == "the event log has a gap: seq 2 missing before 3"
    assert violation.evidence.events == (3,)


def test_inv_003_finds_an_illegal_move():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    succeeded(queue)
    with queue.store.transaction() as tx:  # "run it again": SUCCEEDED is terminal
        tx.execute("UPDATE jobs SET state = 'PENDING' WHERE id = 1")
        seq = tx.event(1.0, "job.requeued", job=1, job_state=["SUCCEEDED", "PENDING"])

    violation = the_violation(queue.store, "INV_003")

    assert violation.message == "job 1 moved SUCCEEDED -> PENDING, which is illegal"
    assert violation.evidence.jobs == (1,)
    assert violation.evidence.executions == (1,)
    assert violation.evidence.events == (seq,)


def test_inv_003_finds_a_move_from_a_state_the_log_never_reached():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")
    with queue.store.transaction() as tx:  # committed without ever being started
        tx.execute("UPDATE executions SET status = 'COMMITTED' WHERE id = 1")
        seq = tx.event(
            0.0,
            "execution.committed",
            job=1,
            execution=1,
            worker="w1",
            execution_state=["IN_PROGRESS", "COMMITTED"],
        )

    violation = the_violation(queue.store, "INV_003")

    assert violation.message == (
        "execution 1 moved IN_PROGRESS -> COMMITTED but the log had it LEASED"
    )
    assert violation.evidence == Evidence((1,), (1,), (seq,))


def test_inv_003_finds_an_unlogged_transition():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)  # seq 1
    with queue.store.transaction() as tx:  # a state change with no event
        tx.execute("UPDATE jobs SET state = 'RUNNING' WHERE id = 1")

    violation = the_violation(queue.store, "INV_003")

    assert violation.message == (
        "job 1 is RUNNING but its logged history ends at PENDING: a transition was not logged"
    )
    assert violation.evidence.jobs == (1,)
    assert violation.evidence.events == (1,)  # the last logged move of job 1


# --- INV_004: no lost and no lying work -----------------------------------------------


def test_inv_004_finds_a_success_without_its_effect():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    succeeded(queue)
    with queue.store.transaction() as tx:  # the effects table has no trigger guarding it
        tx.execute("DELETE FROM effects")

    violation = the_violation(queue.store, "INV_004")

    assert violation.message == "job 1 is SUCCEEDED but no effect of it was ever applied"
    assert (violation.evidence.jobs, violation.evidence.executions) == ((1,), (1,))


def test_inv_004_finds_a_dead_job_without_its_reasons():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER, max_attempts=1)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")
    with queue.store.transaction() as tx:
        tx.execute("UPDATE jobs SET last_error = NULL WHERE id = 1")

    violation = the_violation(queue.store, "INV_004")

    assert violation.message == "job 1 is DEAD without the reasons it died"
    assert (violation.evidence.jobs, violation.evidence.executions) == ((1,), (1,))


def test_inv_004_finds_a_job_left_running_past_a_lease_the_reaper_swept():
    """The reaper logged a sweep at t=31, yet a lease that expired at t=30 is still held:
    the reaper missed it, and the job would wait forever."""
    queue, clock = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")  # expires at 30
    clock.advance(31.0)
    assert check(queue.store) == []  # expired but not yet swept: nobody could have acted
    with queue.store.transaction() as tx:
        seq = tx.event(clock.now(), "reaper.swept", worker=REAPER, rescued=[])

    violation = the_violation(queue.store, "INV_004")

    assert violation.message == (
        "job 1 is still RUNNING on execution 1, whose lease expired at 30.000, although the "
        "reaper swept at 31.000"
    )
    assert violation.evidence == Evidence((1,), (1,), (seq,))


def test_inv_004_holds_when_the_real_reaper_swept():
    queue, clock = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")
    clock.advance(31.0)

    assert queue.reap() == [1]
    assert check(queue.store) == []


def test_inv_004_reports_unfinished_work_only_once_the_run_is_over():
    """Mid-run, PENDING is normal; at the end of a run it is work that was lost."""
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)

    assert check(queue.store, final=False) == []
    violation = the_violation(queue.store, "INV_004", final=True)
    assert violation.message == "job 1 was accepted but ended the run PENDING"
    assert violation.evidence.jobs == (1,)


# --- INV_005: every failure leaves a signal -------------------------------------------


def test_inv_005_finds_a_failed_execution_with_no_error_event():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")
    with queue.store.transaction() as tx:  # a legal, logged failure that says nothing
        tx.execute("UPDATE executions SET status = 'FAILED', finished_at = 0.0 WHERE id = 1")
        tx.execute("UPDATE jobs SET state = 'PENDING' WHERE id = 1")
        tx.event(
            0.0,
            "job.retry_scheduled",
            job=1,
            execution=1,
            worker="w1",
            job_state=["RUNNING", "PENDING"],
            execution_state=["LEASED", "FAILED"],
        )

    violation = the_violation(queue.store, "INV_005")

    assert violation.message == "execution 1 of job 1 ended FAILED and no event says why"
    assert (violation.evidence.jobs, violation.evidence.executions) == ((1,), (1,))


def test_inv_005_finds_a_last_error_no_event_carries():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")
    with queue.store.transaction() as tx:
        tx.execute("UPDATE jobs SET last_error = 'ConnectionError: mail' WHERE id = 1")

    violation = the_violation(queue.store, "INV_005")

    assert violation.message == "job 1's last error 'ConnectionError: mail' appears in no event"
    assert violation.evidence.jobs == (1,)


def test_inv_005_a_clean_verdict_kept_by_the_watching_monitor_is_dropped_when_the_row_changes():
    """The per-step monitor does not work out again a verdict it found clean while the row
    says the same (`Monitor.signalled`): a row rewritten since must be looked at anew."""
    store = Store.memory()
    queue = Queue(store, SimClock(), random.Random(0), POLICIES)
    monitor = Monitor(store, INVARIANTS, watch=True)
    queue.submit("award_points", ORDER)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")
    assert monitor.check() == []
    with store.transaction() as tx:  # the attempt's error and the job's, rewritten unlogged
        tx.execute("UPDATE executions SET error = 'ConnectionError: mail' WHERE id = 1")
        tx.execute("UPDATE jobs SET last_error = 'ConnectionError: mail' WHERE id = 1")

    found = [v.message for v in monitor.check()]

    assert found == [
        "execution 1 of job 1 ended FAILED with 'ConnectionError: mail', but the"
        " job.retry_scheduled that ended it says 'TimeoutError: ledger'",
        "job 1's last error 'ConnectionError: mail' appears in no event",
    ]


def test_inv_001_the_watching_monitor_looks_at_the_key_of_every_effect_written():
    """The per-step monitor looks only at the keys of the effects written since its last
    check: a second effect under a key, written by another job, is one of them."""
    store = Store.memory()
    queue = Queue(store, SimClock(), random.Random(0), POLICIES)
    monitor = Monitor(store, INVARIANTS, watch=True)
    queue.submit("award_points", ORDER)
    queue.submit("award_points", {**ORDER, "order": 1002})
    succeeded(queue)
    lease = queue.lease("w2")
    assert monitor.check() == []
    with store.transaction() as tx:  # job 2 writes order 1001's ledger entry again
        forge_effect(tx, 0.0, job=2, execution=lease.execution_id)

    found = [v.message for v in monitor.check()]

    assert found == [
        "effect ledger/order-1001 was applied 2 times, by executions 1 and 2 of jobs 1 and 2"
    ]


# --- INV_006: retries are bounded -----------------------------------------------------


def test_inv_006_finds_more_attempts_than_the_budget():
    """A requeue that is not a redrive does not reset the budget: the next lease is one
    attempt too many."""
    queue, _ = new_queue()
    queue.submit("award_points", ORDER, max_attempts=1)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")  # DEAD after its one attempt
    with queue.store.transaction() as tx:  # an automatic requeue, not an operator's redrive
        tx.execute("UPDATE jobs SET state = 'PENDING' WHERE id = 1")
        tx.event(0.0, "job.requeued", job=1, job_state=["DEAD", "PENDING"])
    assert queue.lease("w2").attempt == 2

    violation = the_violation(queue.store, "INV_006")

    assert violation.message == "job 1 was attempted 2 times; its budget is 1"
    assert violation.evidence.executions == (1, 2)
    leased = [e.seq for e in queue.store.events() if e.type == "job.leased"]
    assert violation.evidence.events == tuple(leased)


def test_inv_006_counts_afresh_after_a_redrive():
    queue, _ = new_queue()
    queue.submit("award_points", ORDER, max_attempts=1)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")
    queue.redrive(1, reason="ledger is back", by="alice")
    queue.lease("w2")

    assert check(queue.store) == []


# --- INV_007: fencing -----------------------------------------------------------------


def test_inv_007_finds_a_write_by_a_stale_execution():
    queue, clock = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")  # execution 1, token 1
    clock.advance(POLICIES.lease_s)
    queue.reap()
    queue.lease("w2")  # execution 2, token 2
    newer = last(queue.store, "job.leased", execution_id=2).seq
    with queue.store.transaction() as tx:  # w1 wakes up; nothing fences it
        stale = tx.event(clock.now(), "execution.committed", job=1, execution=1, worker="w1")

    violation = the_violation(queue.store, "INV_007")

    assert violation.message == (
        "execution 1 wrote execution.committed after execution 2 took job 1 with a newer token"
    )
    assert violation.evidence == Evidence((1,), (1, 2), (newer, stale))


def test_inv_007_finds_a_write_after_the_lease_expired():
    queue, clock = new_queue()
    queue.submit("award_points", ORDER)
    queue.lease("w1")  # expires at 30
    clock.advance(POLICIES.lease_s)
    with queue.store.transaction() as tx:  # started at the very instant the lease ran out
        tx.execute("UPDATE executions SET status = 'IN_PROGRESS' WHERE id = 1")
        seq = tx.event(
            clock.now(),
            "execution.started",
            job=1,
            execution=1,
            worker="w1",
            execution_state=["LEASED", "IN_PROGRESS"],
        )

    violation = the_violation(queue.store, "INV_007")

    assert violation.message == (
        "execution 1 wrote execution.started at 30.000, after its lease expired at 30.000"
    )
    assert violation.evidence == Evidence((1,), (1,), (seq,))


def test_inv_007_follows_heartbeats():
    """A write after the first expiry is fine when a heartbeat extended the lease."""
    queue, clock = new_queue()
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    clock.advance(20.0)
    lease = queue.heartbeat(lease)  # now expires at 50
    clock.advance(20.0)
    queue.start(lease)

    assert check(queue.store) == []
    clock.advance(10.0)
    with pytest.raises(LeaseLost):
        queue.commit(lease, POINTS)
    assert check(queue.store) == []  # a refused write is logged as lease.lost, not a write


def test_inv_004_ignores_a_sweep_logged_before_the_lease_when_the_clock_stepped_back():
    """The reaper sweeps at t=100; the clock steps back to 40 and w1 leases job 1 until 70.
    The sweep's time is later than the lease's expiry, but it happened before the lease
    existed: it cannot have missed it. (Found by the simulator's clock_jump fault.)"""
    queue, clock = new_queue()
    queue.submit("award_points", {"order": 1001})
    clock.set(100.0)
    queue.reap()
    clock.set(40.0)
    queue.lease("w1")
    assert check(queue.store) == []


# --- external effects: another system's record ---------------------------------------

CHARGE = Effect("payments", "charge-1001", external=True)


def timed_out_charge(queue: Queue, worker: str = "w1") -> Lease:
    """A lease whose external charge applied, then whose answer was lost: the attempt
    fails with the charge made."""
    lease = queue.lease(worker)
    queue.start(lease)
    queue.call_external(lease, CHARGE)
    queue.fail(lease, "TimeoutError: no answer from the external call")
    return lease


def test_inv_002_gives_a_job_with_an_unconfirmed_external_charge_its_retries():
    queue, _ = new_queue()
    queue.submit("charge", {"order": 1001}, max_attempts=2)
    timed_out_charge(queue)
    assert queue.get(1).state == "PENDING"
    assert check(queue.store) == []  # the retry may still confirm it


def test_inv_002_finds_an_external_charge_no_attempt_confirmed_once_the_job_is_dead():
    queue, _ = new_queue()
    queue.submit("charge", {"order": 1001}, max_attempts=1)
    timed_out_charge(queue)
    violation = the_violation(queue.store, "INV_002")
    assert "execution 1 applied job 1's effect payments/charge-1001" in violation.message
    assert violation.evidence.executions == (1,)


def test_inv_002_holds_when_a_retry_has_the_charge_absorbed_and_commits():
    queue, clock = new_queue()
    queue.submit("charge", {"order": 1001}, max_attempts=2)
    timed_out_charge(queue)
    clock.set(queue.get(1).run_at)
    retry = queue.lease("w2")
    queue.start(retry)
    queue.call_external(retry, CHARGE)  # the payment API answers with the first charge
    queue.commit(retry, CHARGE)
    queue.ack(retry)
    assert last(queue.store, "effect.absorbed").detail["first_execution"] == 1
    assert check(queue.store, final=True) == []


def test_inv_007_leaves_another_systems_record_of_a_stale_call_alone():
    """A zombie can still call the payment API: the API does not know our leases. Its
    record of the call is not a write to our state; what it must not do is charge twice
    (INV_001), which the idempotency key prevents."""
    queue, clock = new_queue()
    queue.submit("charge", {"order": 1001})
    zombie = queue.lease("w1")
    queue.start(zombie)
    clock.advance(POLICIES.lease_s)
    queue.reap()
    fresh = queue.lease("w2")
    queue.start(fresh)
    queue.call_external(fresh, CHARGE)
    queue.call_external(zombie, CHARGE)  # absorbed: the first charge stands
    assert check(queue.store) == []
