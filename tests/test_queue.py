"""The queue's verbs, one at a time: what each writes, what each refuses, and that a refusal
writes nothing (or, for a fenced write, nothing but the `lease.lost` that records it).

Every queue here is built with explicit Policies, so a changed default cannot silently
change what these tests prove. Time is a SimClock; jitter comes from a seeded Random.
"""

import random
from collections.abc import Callable
from fractions import Fraction

import pytest

from runtime import effects, invariants, states
from runtime.effects import Effect
from runtime.errors import IllegalTransition, LeaseLost, UnknownJob, UsageError
from runtime.policies import Policies
from runtime.queue import REAPER, Job, Lease, Queue, Statistics, next_retry_at
from runtime.worker import Worker
from tests.support import ORDER, POINTS, POLICIES, SUCCEEDED_ONCE, new_queue

pytestmark = pytest.mark.usefixtures("backend")  # every test, on SQLite and on PostgreSQL


def everything(queue: Queue) -> dict[str, list[tuple]]:
    """Every row of every table: "this wrote nothing" made checkable."""
    return {
        table: [tuple(row) for row in queue.store.all(f"SELECT * FROM {table} ORDER BY 1")]
        for table in ("jobs", "executions", "effects", "events")
    }


def types(queue: Queue) -> list[str]:
    return [e.type for e in queue.store.events()]


# --- submit ---------------------------------------------------------------------------


def test_submit_accepts_a_job_durably():
    queue, clock = new_queue(POLICIES)
    clock.set(4.0)

    job_id = queue.submit("award_points", ORDER, idempotency_key=None, delay_s=0.0)

    job = queue.get(job_id)
    assert (job.id, job.kind, job.payload, job.state) == (1, "award_points", ORDER, "PENDING")
    assert (job.attempts, job.max_attempts, job.run_at, job.fencing_token) == (0, 3, 4.0, 0)
    [submitted] = queue.store.events()
    assert (submitted.type, submitted.job_id, submitted.at) == ("job.submitted", 1, 4.0)
    assert submitted.detail["job_state"] == [None, "PENDING"]


def test_submit_with_a_delay_is_not_ready_until_then():
    queue, clock = new_queue(POLICIES)

    job_id = queue.submit("award_points", ORDER, delay_s=10.0, max_attempts=5)

    assert queue.get(job_id).run_at == 10.0
    assert queue.get(job_id).max_attempts == 5
    assert queue.lease("w1") is None
    clock.advance(10.0)
    assert queue.lease("w1").job_id == job_id


class Unserializable:
    pass


@pytest.mark.parametrize(
    "kind,payload,says",
    [
        ("", ORDER, "kind must be a non-empty string"),
        ("   ", ORDER, "kind must be a non-empty string"),
        (None, ORDER, "kind must be a non-empty string"),
        ("award_points", [1001, 50], "payload must be a JSON object, got list"),
        ("award_points", "order 1001", "payload must be a JSON object, got str"),
        ("award_points", None, "payload must be a JSON object, got NoneType"),
        ("award_points", {"at": Unserializable()}, "payload is not JSON"),
        ("award_points", {"orders": {1001, 1002}}, "payload is not JSON"),
        ("award_points", {"points": float("nan")}, "payload is not JSON"),
        ("award_points", {"points": float("inf")}, "payload is not JSON"),
    ],
)
def test_submit_refuses_a_job_no_worker_could_run_and_writes_nothing(kind, payload, says):
    queue, _ = new_queue(POLICIES)

    with pytest.raises(UsageError, match=says):
        queue.submit(kind, payload, idempotency_key="order-1001")

    assert everything(queue) == everything(new_queue(POLICIES)[0])  # still a fresh store


@pytest.mark.parametrize(
    "options,says",
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"delay_s": -1.0}, "delay_s must not be negative"),
    ],
)
def test_submit_refuses_nonsense_options(options, says):
    queue, _ = new_queue(POLICIES)
    before = everything(queue)

    with pytest.raises(UsageError, match=says):
        queue.submit("award_points", ORDER, **options)
    assert everything(queue) == before


def test_an_idempotency_key_returns_the_first_job_and_logs_the_repeat():
    """A client that retries its submit (a timeout, a double click) must not create a twin."""
    queue, clock = new_queue(POLICIES)
    first = queue.submit("award_points", ORDER, idempotency_key="order-1001")
    clock.advance(2.0)

    twice = {"order": 1001, "points": 999}  # even with a different payload
    again = queue.submit("award_points", twice, idempotency_key="order-1001")
    other = queue.submit("award_points", ORDER, idempotency_key="order-1002")

    assert again == first == 1 and other == 2
    assert queue.get(first).payload == ORDER  # the repeat changed nothing about the job
    absorbed = queue.store.events()[1]
    assert (absorbed.type, absorbed.job_id, absorbed.at) == ("job.submit_absorbed", 1, 2.0)
    assert absorbed.detail == {"key": "order-1001"}
    assert types(queue) == ["job.submitted", "job.submit_absorbed", "job.submitted"]


# --- lease ----------------------------------------------------------------------------


def test_lease_returns_none_when_nothing_is_ready_and_writes_nothing():
    queue, _ = new_queue(POLICIES)
    assert queue.lease("w1") is None

    queue.submit("award_points", ORDER, delay_s=5.0)
    before = everything(queue)
    assert queue.lease("w1") is None  # its run_at is still in the future
    assert everything(queue) == before


def test_lease_hands_out_the_job_with_everything_recorded():
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER)
    clock.advance(1.0)

    lease = queue.lease("w1")

    assert lease == Lease(
        job_id=job_id, execution_id=1, worker="w1", fencing_token=1, attempt=1, expires_at=31.0
    )
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.fencing_token) == ("RUNNING", 1, 1)
    assert lease.job == job  # what the handler is given: the row as the lease left it
    execution = queue.store.one("SELECT * FROM executions WHERE id = 1")
    assert (execution["status"], execution["lease_expires_at"], execution["worker"]) == (
        "LEASED",
        31.0,
        "w1",
    )
    leased = queue.store.events()[-1]
    assert (leased.type, leased.job_id, leased.execution_id, leased.worker) == (
        "job.leased",
        1,
        1,
        "w1",
    )
    assert leased.detail["job_state"] == ["PENDING", "RUNNING"]
    assert leased.detail["execution_state"] == [None, "LEASED"]
    assert (leased.detail["token"], leased.detail["lease_expires_at"]) == (1, 31.0)


def test_lease_takes_the_oldest_ready_job_by_run_at_then_id():
    queue, clock = new_queue(POLICIES)
    late = queue.submit("award_points", {"order": 1}, delay_s=5.0)  # id 1, run_at 5
    early = queue.submit("award_points", {"order": 2}, delay_s=0.0)  # id 2, run_at 0
    tie = queue.submit("award_points", {"order": 3}, delay_s=0.0)  # id 3, run_at 0
    clock.advance(10.0)

    order = [queue.lease("w1").job_id for _ in range(3)]

    assert order == [early, tie, late]
    assert queue.lease("w1") is None


def test_fencing_tokens_grow_with_every_lease_of_a_job():
    """Retry, rescue and redrive each lease the job again, each time with a bigger token."""
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER, max_attempts=3)
    other = queue.submit("award_points", {"order": 1002})

    first = queue.lease("w1")
    queue.fail(first, "TimeoutError: ledger")  # retry scheduled
    clock.set(queue.get(job_id).run_at)
    assert queue.lease("w9").job_id == other  # tokens are per job: the other job gets 1
    second = queue.lease("w1")
    clock.advance(POLICIES.lease_s)
    assert queue.reap() == [other, job_id]  # both leases ran out together
    third = queue.lease("w2")
    assert third.job_id == job_id
    assert queue.fail(third, "TimeoutError: ledger") == "DEAD"
    queue.redrive(job_id, reason="ledger is back", by="alice")
    fourth = queue.lease("w2")

    assert [lease.fencing_token for lease in (first, second, third, fourth)] == [1, 2, 3, 4]
    rows = queue.store.all("SELECT fencing_token FROM executions WHERE job_id = ?", (job_id,))
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert queue.get(other).fencing_token == 1


# --- heartbeat ------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_from_now():
    queue, clock = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")  # expires at 30
    clock.advance(20.0)

    extended = queue.heartbeat(lease)

    assert extended.expires_at == 50.0
    assert extended == Lease(lease.job_id, lease.execution_id, "w1", 1, 1, 50.0)
    row = queue.store.one("SELECT lease_expires_at FROM executions WHERE id = ?", (1,))
    assert row[0] == 50.0
    assert queue.store.events()[-1].detail == {"lease_expires_at": 50.0}
    clock.advance(20.0)  # t=40: past the first expiry, inside the extended one
    assert queue.reap() == []
    queue.start(extended)  # still ours


# --- fencing --------------------------------------------------------------------------

Write = Callable[[Queue, Lease], object]
FENCED: dict[str, tuple[tuple[str, ...], Write]] = {
    # action as logged: (steps that make the write legal, the write itself)
    "heartbeat": ((), lambda q, lease: q.heartbeat(lease)),
    "start": ((), lambda q, lease: q.start(lease)),
    "apply effect": (("start",), lambda q, lease: q.apply_effect(lease, POINTS)),
    "commit": (("start",), lambda q, lease: q.commit(lease, POINTS)),
    "ack": (("start", "commit"), lambda q, lease: q.ack(lease)),
    "fail": (("start",), lambda q, lease: q.fail(lease, "TimeoutError: ledger")),
}


def prepare(queue: Queue, lease: Lease, steps: tuple[str, ...]) -> None:
    for step in steps:
        if step == "start":
            queue.start(lease)
        else:
            queue.commit(lease, POINTS)


def refused_with_only_a_trace(queue: Queue, lease: Lease, action: str, reason: str) -> None:
    """Run `action` with a lost lease: LeaseLost, and the only change is one lease.lost."""
    before = everything(queue)

    with pytest.raises(LeaseLost, match=f"w1 cannot {action} job 1"):
        FENCED[action][1](queue, lease)

    after = everything(queue)
    assert {t: rows for t, rows in after.items() if t != "events"} == {
        t: rows for t, rows in before.items() if t != "events"
    }
    assert after["events"][:-1] == before["events"]
    lost = queue.store.events()[-1]
    assert (lost.type, lost.job_id, lost.execution_id, lost.worker) == ("lease.lost", 1, 1, "w1")
    assert (lost.detail["action"], lost.detail["token"]) == (action, 1)
    assert reason in lost.detail["reason"]


@pytest.mark.parametrize("action", FENCED)
def test_a_write_once_the_lease_expired_is_refused(action):
    """Expiry is exact: at `expires_at` the lease is already gone (the reaper may take it)."""
    queue, clock = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    prepare(queue, lease, FENCED[action][0])
    clock.advance(POLICIES.lease_s)

    refused_with_only_a_trace(queue, lease, action, "lease expired at 30.000")


@pytest.mark.parametrize("action", FENCED)
def test_a_write_with_a_stale_token_is_refused(action):
    """w1 stalls, the reaper rescues the job, w2 takes it: w1's token 1 is now stale."""
    queue, clock = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    stale = queue.lease("w1")
    prepare(queue, stale, FENCED[action][0])
    clock.advance(POLICIES.lease_s)
    assert queue.reap() == [1]
    assert queue.lease("w2").fencing_token == 2

    refused_with_only_a_trace(queue, stale, action, "token 1 is stale; job 1 is at 2")


def test_a_write_to_a_finished_execution_is_refused():
    """After the ack the lease is released; a late duplicate ack is a lost lease, not a
    second success."""
    queue, _ = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    prepare(queue, lease, ("start", "commit"))
    queue.ack(lease)

    refused_with_only_a_trace(queue, lease, "ack", "execution is DONE, job is SUCCEEDED")


# --- the happy path of one attempt ----------------------------------------------------


def test_start_commit_ack_runs_one_job_to_success_with_one_effect():
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER)
    lease = queue.lease("w1")

    queue.start(lease)
    clock.advance(1.0)
    queue.commit(lease, POINTS)
    queue.ack(lease)

    assert queue.get(job_id).state == "SUCCEEDED"
    [applied] = effects.applied(queue.store, job_id)
    assert (applied.sink, applied.key, applied.execution_id, applied.at) == (
        "ledger",
        "order-1001",
        1,
        1.0,
    )
    execution = queue.store.one("SELECT status, finished_at FROM executions WHERE id = 1")
    assert tuple(execution) == ("DONE", 1.0)
    assert types(queue) == SUCCEEDED_ONCE


# --- fast paths: many submits, many leases, commit and ack in one transaction -----------


def test_submit_many_accepts_a_batch_in_one_transaction_or_none_of_it():
    queue, _ = new_queue(POLICIES)
    assert queue.submit_many("k", [{"n": n} for n in range(3)]) == [1, 2, 3]
    assert types(queue) == ["job.submitted"] * 3

    with pytest.raises(UsageError, match="JSON object"):
        queue.submit_many("k", [{"n": 3}, "not an object"])  # type: ignore[list-item]
    assert [job.id for job in queue.jobs()] == [1, 2, 3]  # the first of the batch too: none


def test_lease_many_leases_each_job_as_lease_would_and_can_start_them():
    queue, _ = new_queue(POLICIES)
    queue.submit_many("k", [{"n": n} for n in range(5)])

    first = queue.lease_many("w1", 2)
    second = queue.lease_many("w2", 2, start=True)

    assert [(x.job_id, x.execution_id, x.fencing_token) for x in first] == [(1, 1, 1), (2, 2, 1)]
    assert [x.job_id for x in second] == [3, 4]
    statuses = queue.store.all("SELECT id, status FROM executions ORDER BY id")
    assert [tuple(row) for row in statuses] == [
        (1, "LEASED"),
        (2, "LEASED"),
        (3, "IN_PROGRESS"),
        (4, "IN_PROGRESS"),
    ]
    assert types(queue)[5:] == [
        "job.leased",
        "job.leased",
        "job.leased",
        "execution.started",
        "job.leased",
        "execution.started",
    ]
    assert [x.job_id for x in queue.lease_many("w3", 9)] == [5]
    assert queue.lease_many("w3", 9) == []
    with pytest.raises(UsageError, match="at least 1"):
        queue.lease_many("w3", 0)


def test_complete_commits_and_acks_in_one_transaction_with_the_same_events():
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER)
    [lease] = queue.lease_many("w1", 1, start=True)
    clock.advance(1.0)

    queue.complete(lease, POINTS)

    assert queue.get(job_id).state == "SUCCEEDED"
    [applied] = effects.applied(queue.store, job_id)
    assert (applied.execution_id, applied.at) == (1, 1.0)
    assert types(queue) == SUCCEEDED_ONCE
    assert invariants.check(queue.store, final=True) == []


def test_complete_is_fenced_and_absorbs_a_repeat():
    """A completion on a lost lease is refused; the retry's completion finds the effect
    that an earlier commit recorded and absorbs it."""
    queue, clock = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    [first] = queue.lease_many("w1", 1, start=True)
    queue.commit(first, POINTS)  # committed, then its worker died before the ack
    clock.advance(POLICIES.lease_s)
    queue.reap()
    with pytest.raises(LeaseLost):
        queue.complete(first, POINTS)

    [retry] = queue.lease_many("w2", 1, start=True)
    queue.complete(retry, POINTS)

    [only] = effects.applied(queue.store)
    assert only.execution_id == first.execution_id
    assert "effect.absorbed" in types(queue)
    assert invariants.check(queue.store, final=True) == []


def test_a_worker_runs_a_batch_in_two_transactions():
    """`Worker.attempts`: the batch leased and started in one transaction, run job by job,
    completed in one transaction; the same steps, events and invariants as the
    step-by-step path, which takes four transactions a job."""
    queue, _ = new_queue(POLICIES)
    queue.submit_many("award_points", [{"order": n, "points": 5} for n in range(4)])
    worker = Worker("w1", queue, {"award_points": award})
    transactions = count_transactions(queue)

    steps = list(worker.attempts(3))

    assert steps == ["leased", "started", "effect_applied"] * 3 + ["committed", "acked"] * 3
    assert transactions() == 2
    assert [job.state for job in queue.jobs()] == ["SUCCEEDED"] * 3 + ["PENDING"]
    assert [e.type for e in queue.store.events() if e.job_id == 1] == SUCCEEDED_ONCE
    assert invariants.check(queue.store) == []


def test_a_batch_completion_refuses_a_lost_lease_and_completes_the_rest():
    queue, clock = new_queue(POLICIES)
    queue.submit_many("award_points", [{"order": n, "points": 5} for n in range(2)])
    first, second = queue.lease_many("w1", 2, start=True)
    clock.advance(POLICIES.lease_s)
    queue.reap()  # both leases expired: rescued
    [again] = queue.lease_many("w2", 1, start=True)  # job 1 again, token 2

    completed = queue.complete_many([(first, award_job(1)), (again, award_job(1))])

    assert completed == [False, True]
    assert queue.get(1).state == "SUCCEEDED" and queue.get(2).state == "PENDING"
    [lost] = [e for e in queue.store.events() if e.type == "lease.lost"]
    assert (lost.execution_id, lost.detail["action"]) == (first.execution_id, "complete")
    assert invariants.check(queue.store) == []
    assert second.job_id == 2


def award_job(order: int) -> Effect:
    return Effect("ledger", f"order-{order}", {"points": 5})


def award(job: Job) -> Effect:
    return Effect("ledger", f"order-{job.payload['order']}", {"points": job.payload["points"]})


def count_transactions(queue: Queue) -> Callable[[], int]:
    """How many transactions the store has begun since this was called."""
    begun = [0]
    queue.store.before_transaction = lambda: begun.__setitem__(0, begun[0] + 1)
    return lambda: begun[0]


# --- fail, retry, dead ----------------------------------------------------------------


def test_a_failed_attempt_is_retried_after_a_jittered_backoff():
    queue, clock = new_queue(POLICIES, seed=7)
    twin = random.Random(7)  # the same seed draws the same jitter
    job_id = queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    queue.start(lease)
    clock.advance(2.5)

    assert queue.fail(lease, "TimeoutError: ledger") == "PENDING"

    job = queue.get(job_id)
    assert job.run_at == next_retry_at(2.5, 1, twin, POLICIES)
    assert 2.5 <= job.run_at <= 2.5 + 1.0  # attempt 1: up to base * 2^0 seconds
    assert (job.state, job.attempts, job.last_error) == ("PENDING", 1, "TimeoutError: ledger")
    execution = queue.store.one("SELECT status, error, finished_at FROM executions")
    assert tuple(execution) == ("FAILED", "TimeoutError: ledger", 2.5)
    retry = queue.store.events()[-1]
    assert retry.type == "job.retry_scheduled"
    assert retry.detail == {
        "error": "TimeoutError: ledger",
        "retry_at": job.run_at,
        "attempts": 1,
        "job_state": ["RUNNING", "PENDING"],
        "execution_state": ["IN_PROGRESS", "FAILED"],
    }
    assert job.run_at > 2.5  # seed 7 draws a real wait...
    assert queue.lease("w1") is None  # ...and the job is not leased before its time
    clock.set(job.run_at)
    assert queue.lease("w2").attempt == 2


def test_a_job_dies_once_its_attempts_are_spent_and_keeps_every_reason():
    queue, clock = new_queue(POLICIES, seed=3)
    job_id = queue.submit("award_points", ORDER, max_attempts=3)

    outcomes = []
    for attempt in (1, 2, 3):
        lease = queue.lease("w1")
        assert lease.attempt == attempt
        now = clock.now()
        outcomes.append(queue.fail(lease, f"error {attempt}"))
        if attempt < 3:
            run_at = queue.get(job_id).run_at
            ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))  # base * 2^(n-1), capped
            assert now <= run_at <= now + ceiling
            clock.set(run_at)

    assert outcomes == ["PENDING", "PENDING", "DEAD"]
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.last_error) == ("DEAD", 3, "error 3")
    assert queue.lease("w1") is None  # a dead job is never leased again by itself
    errors = [e.detail["error"] for e in queue.store.events() if "error" in e.detail]
    assert errors == ["error 1", "error 2", "error 3"]
    assert [e.type for e in queue.store.events() if "error" in e.detail][-1] == "job.dead"
    rows = queue.store.all("SELECT status, error FROM executions ORDER BY id")
    assert [tuple(r) for r in rows] == [("FAILED", f"error {n}") for n in (1, 2, 3)]


def test_fail_needs_an_error_message():
    queue, _ = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    before = everything(queue)

    with pytest.raises(UsageError, match="needs an error message"):
        queue.fail(lease, "")
    assert everything(queue) == before


# --- backoff --------------------------------------------------------------------------


class TopOfRange(random.Random):
    """A fake Random that always draws the top of the range: shows the ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


class BottomOfRange(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_the_backoff_ceiling_doubles_then_caps():
    policies = Policies(
        lease_s=30.0, attempts_max=9, retry_delay_s_base=1.0, retry_delay_s_max=60.0
    )

    ceilings = [next_retry_at(100.0, n, TopOfRange(), policies) - 100.0 for n in range(1, 10)]

    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert next_retry_at(100.0, 5, BottomOfRange(), policies) == 100.0  # full jitter: from 0


def test_a_stated_schedule_gives_each_attempt_its_ceiling_and_repeats_the_last():
    policies = Policies(retry_schedule_s=(10.0, 30.0, 120.0, 600.0))

    ceilings = [next_retry_at(100.0, n, TopOfRange(), policies) - 100.0 for n in range(1, 7)]

    assert ceilings == [10.0, 30.0, 120.0, 600.0, 600.0, 600.0]
    assert next_retry_at(100.0, 3, BottomOfRange(), policies) == 100.0  # full jitter: from 0
    exact = policies.without("backoff_jitter")
    assert next_retry_at(100.0, 2, random.Random(0), exact) == 130.0  # no jitter: as stated


@pytest.mark.parametrize("schedule", [(-1.0,), (10.0, float("inf")), (float("nan"),)])
def test_a_schedule_with_a_delay_that_makes_no_sense_is_refused(schedule):
    with pytest.raises(ValueError, match="retry_schedule_s"):
        Policies(retry_schedule_s=schedule)


@pytest.mark.parametrize("attempt", [1, 2, 5, 30, 1100, 5000])
def test_the_backoff_stays_in_range_for_any_attempt(attempt):
    """Full jitter lands anywhere in [now, now + min(max, base * 2^(n-1))], rounded to the
    millisecond; a huge attempt number (a generous budget) must not overflow the float."""
    policies = Policies(
        lease_s=30.0, attempts_max=10_000, retry_delay_s_base=0.5, retry_delay_s_max=60.0
    )
    rng = random.Random(attempt)
    ceiling = float(min(Fraction(60), Fraction(1, 2) * 2 ** (attempt - 1)))  # exact, no overflow

    for _ in range(200):
        at = next_retry_at(1000.0, attempt, rng, policies)
        assert 1000.0 <= at <= 1000.0 + ceiling
        assert at == round(at, 3)


def test_the_backoff_is_deterministic_for_a_seed():
    def draws(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [next_retry_at(0.0, n % 8 + 1, rng, POLICIES) for n in range(20)]

    assert draws(42) == draws(42)
    assert draws(42) != draws(43)


# --- reap -----------------------------------------------------------------------------


def test_reap_rescues_an_expired_lease_and_nothing_sooner():
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER)
    queue.lease("w1")  # expires at 30
    clock.advance(29.5)

    assert queue.reap() == []
    assert queue.get(job_id).state == "RUNNING"
    swept = queue.store.events()[-1]
    assert (swept.type, swept.worker, swept.detail) == ("reaper.swept", REAPER, {"rescued": []})

    clock.advance(0.5)  # t=30: expired, exactly
    assert queue.reap() == [job_id]

    job = queue.get(job_id)
    assert (job.state, job.run_at) == ("PENDING", 30.0)
    assert job.last_error == "lease of w1 expired at 30.000"
    execution = queue.store.one("SELECT status, error, finished_at FROM executions")
    assert tuple(execution) == ("ABORTED", "lease of w1 expired at 30.000", 30.0)
    expired, swept = queue.store.events()[-2:]
    assert (expired.type, expired.worker, expired.execution_id) == ("lease.expired", REAPER, 1)
    assert expired.detail["job_state"] == ["RUNNING", "PENDING"]
    assert expired.detail["execution_state"] == ["LEASED", "ABORTED"]
    assert swept.detail == {"rescued": [job_id]}
    again = queue.lease("w2")  # at-least-once: somebody else gets it
    assert (again.job_id, again.attempt, again.fencing_token) == (job_id, 2, 2)


def test_reap_dead_letters_a_rescued_job_whose_attempts_are_spent():
    queue, clock = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER, max_attempts=1)
    lease = queue.lease("w1")
    queue.start(lease)
    clock.advance(POLICIES.lease_s)

    assert queue.reap() == [job_id]

    job = queue.get(job_id)
    assert job.state == "DEAD"
    assert job.last_error == "lease of w1 expired at 30.000; attempts spent"
    dead = queue.store.events()[-2]
    assert (dead.type, dead.worker, dead.detail["error"]) == ("job.dead", REAPER, job.last_error)
    assert dead.detail["execution_state"] == ["IN_PROGRESS", "ABORTED"]


def test_reap_leaves_live_leases_and_finished_work_alone():
    queue, clock = new_queue(POLICIES)
    done, stalled, live = (queue.submit("award_points", {"order": n}) for n in (1, 2, 3))
    lease = queue.lease("w1")
    prepare(queue, lease, ("start", "commit"))
    queue.ack(lease)
    queue.lease("w2")  # `stalled`, expires at 30
    clock.advance(10.0)
    queue.lease("w3")  # `live`, expires at 40
    clock.advance(20.0)

    assert queue.reap() == [stalled]
    states_now = [queue.get(j).state for j in (done, stalled, live)]
    assert states_now == ["SUCCEEDED", "PENDING", "RUNNING"]


# --- redrive --------------------------------------------------------------------------


def dead_job(queue: Queue) -> int:
    job_id = queue.submit("award_points", ORDER, max_attempts=1)
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")
    assert queue.get(job_id).state == "DEAD"
    return job_id


def test_redrive_gives_a_dead_job_a_fresh_attempt_budget():
    queue, clock = new_queue(POLICIES)
    job_id = dead_job(queue)
    clock.advance(60.0)

    queue.redrive(job_id, reason="ledger service is back", by="alice")

    job = queue.get(job_id)
    assert (job.state, job.attempts, job.run_at) == ("PENDING", 0, 60.0)
    redriven = queue.store.events()[-1]
    assert (redriven.type, redriven.worker) == ("job.redriven", "alice")
    assert redriven.detail == {
        "reason": "ledger service is back",
        "attempts_before": 1,
        "job_state": ["DEAD", "PENDING"],
    }
    lease = queue.lease("w2")
    assert (lease.attempt, lease.fencing_token) == (1, 2)  # a new budget, but a newer token
    assert queue.fail(lease, "TimeoutError: ledger") == "DEAD"  # the budget is 1 again


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "SUCCEEDED"])
def test_redrive_refuses_a_job_that_is_not_dead(state):
    queue, _ = new_queue(POLICIES)
    job_id = queue.submit("award_points", ORDER)
    if state != "PENDING":
        lease = queue.lease("w1")
    if state == "SUCCEEDED":
        prepare(queue, lease, ("start", "commit"))
        queue.ack(lease)
    assert queue.get(job_id).state == state
    before = everything(queue)

    with pytest.raises(UsageError, match=f"job 1 is {state}, only a DEAD job is redriven"):
        queue.redrive(job_id, reason="try again", by="alice")
    assert everything(queue) == before


def test_redrive_needs_a_reason_and_a_real_job():
    queue, _ = new_queue(POLICIES)
    job_id = dead_job(queue)
    before = everything(queue)

    with pytest.raises(UsageError, match="needs a reason"):
        queue.redrive(job_id, reason="", by="alice")
    with pytest.raises(UnknownJob, match="no job 99"):
        queue.redrive(99, reason="try again", by="alice")
    assert everything(queue) == before


# --- illegal transitions --------------------------------------------------------------


@pytest.mark.parametrize(
    "done,write",
    [
        (("start",), "start"),
        ((), "commit"),
        (("start",), "ack"),
        ((), "ack"),
        (("start", "commit"), "fail"),
        (("start", "commit"), "start"),
    ],
    ids=[
        "start twice",
        "commit before start",
        "ack before commit",
        "ack straight after lease",
        "fail after commit",
        "start after commit",
    ],
)
def test_an_illegal_transition_raises_and_writes_nothing(done, write):
    """The check runs inside the transaction, before the write: nothing at all lands, not
    even an event, and (with the commit boundary) not the effect either."""
    queue, _ = new_queue(POLICIES)
    queue.submit("award_points", ORDER)
    lease = queue.lease("w1")
    prepare(queue, lease, done)
    before = everything(queue)

    with pytest.raises(IllegalTransition):
        FENCED[write][1](queue, lease)
    assert everything(queue) == before


@pytest.mark.parametrize(
    "before,after",
    [
        (None, "RUNNING"),
        ("PENDING", "SUCCEEDED"),
        ("SUCCEEDED", "PENDING"),
        ("DEAD", "RUNNING"),
        ("SUCCEEDED", "DEAD"),
    ],
)
def test_the_job_state_machine_refuses_moves_it_does_not_list(before, after):
    with pytest.raises(IllegalTransition, match=f"job cannot move {before} -> {after}"):
        states.require_job_transition(before, after)


@pytest.mark.parametrize(
    "before,after", [("DONE", "FAILED"), ("COMMITTED", "FAILED"), ("ABORTED", "LEASED")]
)
def test_the_execution_state_machine_refuses_moves_it_does_not_list(before, after):
    with pytest.raises(IllegalTransition, match=f"execution cannot move {before} -> {after}"):
        states.require_execution_transition(before, after)


# --- reads ----------------------------------------------------------------------------


def test_statistics_count_each_state_and_the_oldest_pending_age():
    queue, clock = new_queue(POLICIES)
    assert queue.statistics() == Statistics(0, 0, 0, 0, 0.0)

    queue.submit("award_points", {"order": 1})
    queue.submit("award_points", {"order": 2}, max_attempts=1)
    lease = queue.lease("w1")
    prepare(queue, lease, ("start", "commit"))
    queue.ack(lease)  # job 1 SUCCEEDED
    queue.fail(queue.lease("w1"), "TimeoutError: ledger")  # job 2 DEAD
    clock.advance(5.0)
    for n in (3, 4, 5):
        queue.submit("award_points", {"order": n})
    queue.lease("w2")  # job 3 RUNNING
    clock.advance(15.0)

    assert queue.statistics() == Statistics(
        pending=2, running=1, succeeded=1, dead=1, oldest_pending_age_s=15.0
    )


def test_get_refuses_an_unknown_job():
    queue, _ = new_queue(POLICIES)
    with pytest.raises(UnknownJob, match="no job 7"):
        queue.get(7)


def test_next_deadline_is_the_soonest_future_expiry_or_retry():
    """What the simulator jumps to when every worker is idle."""
    queue, clock = new_queue(POLICIES)
    assert queue.next_deadline() is None
    queue.submit("award_points", {"order": 1})
    queue.submit("award_points", {"order": 2}, delay_s=45.0)
    queue.lease("w1")  # expires at 30

    assert queue.next_deadline() == 30.0
    assert not queue.has_expired_lease()
    clock.set(30.0)
    assert queue.has_expired_lease()
    assert queue.next_deadline() == 45.0
