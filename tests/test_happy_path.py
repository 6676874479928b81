"""Chapter 04 as tests: one job from submit to ack, a failing handler that retries with
backoff and goes DEAD with its reasons, and an operator's redrive.

Each test does what docs/04_happy_path.md shows, with assertions where the page has prose.
The page's own examples are run by tests/test_docs.py, which checks that every output it
shows is what its code prints.
"""

import random

import pytest

from runtime import effects, invariants, states, timeline
from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import UsageError
from runtime.policies import Policies
from runtime.queue import Job, Queue
from runtime.store import Store
from runtime.worker import STEPS, Worker
from tests.support import SUCCEEDED_ONCE, new_store

FAILED_ATTEMPT = ["job.leased", "execution.started"]
pytestmark = pytest.mark.usefixtures("backend")  # every test, on SQLite and on PostgreSQL

REFUSALS = ("421 too busy, try again later", "421 too busy, try again later", "554 relay down")


def bench(seed: int) -> tuple[SimClock, Store, Queue]:
    """A fresh lab: a clock that moves only when told, an empty database, one queue."""
    clock = SimClock()
    store = new_store()
    policies = Policies(
        lease_s=30.0, attempts_max=3, retry_delay_s_base=10.0, retry_delay_s_max=60.0
    )
    return clock, store, Queue(store, clock, random.Random(seed), policies)


class MailServer:
    """The outside world, scripted: refuses with each reply it was given, then accepts."""

    def __init__(self, refusals: tuple[str, ...]) -> None:
        self.refusals = list(refusals)

    def send(self, user: int) -> None:
        if self.refusals:
            raise ConnectionError(self.refusals.pop(0))


def welcome_worker(queue: Queue, mail: MailServer) -> Worker:
    def send_welcome(job: Job) -> Effect:
        user = job.payload["user"]
        mail.send(user)
        return Effect(sink="mail", key=f"welcome-{user}", detail={"user": user})

    return Worker("w1", queue, {"send_welcome": send_welcome})


def types(store: Store, after_seq: int = 0) -> list[str]:
    return [event.type for event in store.events(after_seq)]


def dead_job(seed: int) -> tuple[SimClock, Store, Queue, Worker, int]:
    """The chapter's second run: three refusals, three attempts, one DEAD job."""
    clock, store, queue = bench(seed)
    worker = welcome_worker(queue, MailServer(REFUSALS))
    job_id = queue.submit("send_welcome", {"user": 42})
    worker.run_one()
    for _ in range(2):
        clock.set(queue.get(job_id).run_at)
        worker.run_one()
    assert queue.get(job_id).state == states.DEAD
    return clock, store, queue, worker, job_id


# --- one job, by hand ------------------------------------------------------------------


def test_one_job_goes_from_submit_to_ack_and_every_invariant_holds():
    clock, store, queue = bench(seed=1)

    job_id = queue.submit("send_welcome", {"user": 42})
    clock.advance(0.25)
    lease = queue.lease("w1")
    assert lease is not None
    assert (lease.job_id, lease.attempt, lease.fencing_token, lease.expires_at) == (
        job_id,
        1,
        1,
        30.25,
    )
    queue.start(lease)
    clock.advance(0.5)
    queue.commit(lease, Effect(sink="mail", key="welcome-42", detail={"user": 42}))
    queue.ack(lease)

    assert types(store) == SUCCEEDED_ONCE
    assert invariants.check(store, final=True) == []


def test_the_rows_hold_the_present_and_the_effect_names_its_cause():
    clock, store, queue = bench(seed=1)
    job_id = queue.submit("send_welcome", {"user": 42})
    clock.advance(0.25)
    lease = queue.lease("w1")
    assert lease is not None
    queue.start(lease)
    clock.advance(0.5)
    queue.commit(lease, Effect(sink="mail", key="welcome-42", detail={"user": 42}))
    queue.ack(lease)

    job = queue.get(job_id)
    assert (job.state, job.attempts, job.fencing_token, job.last_error) == (
        states.SUCCEEDED,
        1,
        1,
        None,
    )
    execution = store.one("SELECT * FROM executions WHERE job_id = ?", (job_id,))
    assert (
        execution["status"],
        execution["started_at"],
        execution["finished_at"],
        execution["lease_expires_at"],
    ) == (states.DONE, 0.25, 0.75, 30.25)
    [effect] = effects.applied(store)
    assert (effect.key, effect.job_id, effect.execution_id, effect.at) == (
        "welcome-42",
        job_id,
        lease.execution_id,
        0.75,
    )


def test_a_worker_carries_the_lease_through_the_same_steps():
    _, store, queue = bench(seed=1)
    worker = welcome_worker(queue, MailServer(refusals=()))
    queue.submit("send_welcome", {"user": 42})

    assert worker.run_one() == list(STEPS)
    assert types(store) == SUCCEEDED_ONCE
    assert invariants.check(store, final=True) == []


# --- a handler that fails --------------------------------------------------------------


def test_nothing_is_leased_before_its_retry_is_due():
    clock, _, queue = bench(seed=1)
    worker = welcome_worker(queue, MailServer(REFUSALS))
    job_id = queue.submit("send_welcome", {"user": 42})
    assert worker.run_one() == ["leased", "started", "failed"]

    retry_at = queue.get(job_id).run_at
    assert retry_at > clock.now()
    assert worker.run_one() == []
    clock.set(retry_at - 0.001)
    assert queue.lease("w2") is None
    clock.set(retry_at)
    assert queue.lease("w2") is not None


def test_a_failing_handler_is_retried_with_backoff_and_then_goes_dead():
    clock, store, queue = bench(seed=1)
    worker = welcome_worker(queue, MailServer(REFUSALS))
    job_id = queue.submit("send_welcome", {"user": 42})

    assert worker.run_one() == ["leased", "started", "failed"]
    for _ in range(2):
        clock.set(queue.get(job_id).run_at)
        assert worker.run_one() == ["leased", "started", "failed"]

    assert types(store) == [
        "job.submitted",
        *FAILED_ATTEMPT,
        "job.retry_scheduled",
        *FAILED_ATTEMPT,
        "job.retry_scheduled",
        *FAILED_ATTEMPT,
        "job.dead",
    ]
    assert queue.get(job_id).state == states.DEAD
    assert invariants.check(store, final=True) == []


def test_each_retry_waits_within_its_full_jitter_ceiling():
    """After attempt n the delay is uniform in [0, min(60, 10 * 2 ** (n - 1))]."""
    _, store, _, _, _ = dead_job(seed=1)
    events = store.events()
    retries = [e for e in events if e.type == "job.retry_scheduled"]
    leases = [e for e in events if e.type == "job.leased"]

    assert [e.detail["attempts"] for e in retries] == [1, 2]
    for retry in retries:
        ceiling_s = min(60.0, 10.0 * 2 ** (retry.detail["attempts"] - 1))
        assert 0.0 <= retry.detail["retry_at"] - retry.at <= ceiling_s
    assert [e.at for e in leases[1:]] == [e.detail["retry_at"] for e in retries]


def test_a_dead_job_carries_every_reason_it_died():
    _, store, queue, _, job_id = dead_job(seed=1)
    reasons = [f"ConnectionError: {refusal}" for refusal in REFUSALS]

    errors = store.all("SELECT error FROM executions WHERE job_id = ? ORDER BY id", (job_id,))
    assert [row["error"] for row in errors] == reasons
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.last_error) == (states.DEAD, 3, reasons[-1])
    assert [e.detail["error"] for e in store.events() if "error" in e.detail] == reasons
    assert store.events()[-1].type == "job.dead"


# --- a redrive -------------------------------------------------------------------------


def test_a_redrive_gives_a_dead_job_a_fresh_budget_but_never_an_old_token():
    clock, store, queue, worker, job_id = dead_job(seed=1)
    death_seq = store.events()[-1].seq

    clock.advance(300.0)
    queue.redrive(job_id, reason="mail relay fixed", by="operator")
    assert worker.run_one() == list(STEPS)

    assert types(store, after_seq=death_seq) == ["job.redriven", *SUCCEEDED_ONCE[1:]]
    redriven = store.events(after_seq=death_seq)[0]
    assert (redriven.worker, redriven.detail["reason"], redriven.detail["attempts_before"]) == (
        "operator",
        "mail relay fixed",
        3,
    )
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.fencing_token) == (states.SUCCEEDED, 1, 4)
    [effect] = effects.applied(store)
    assert effect.execution_id == 4
    assert invariants.check(store, final=True) == []


def test_only_a_dead_job_is_redriven_and_only_with_a_reason():
    _, store, queue = bench(seed=1)
    worker = welcome_worker(queue, MailServer(refusals=()))
    job_id = queue.submit("send_welcome", {"user": 42})
    worker.run_one()
    before = store.events()

    with pytest.raises(UsageError, match="only a DEAD job is redriven"):
        queue.redrive(job_id, reason="just in case", by="operator")
    with pytest.raises(UsageError, match="needs a reason"):
        queue.redrive(job_id, reason="", by="operator")
    assert store.events() == before


# --- deterministic replay --------------------------------------------------------------


def story(seed: int) -> str:
    """A job that dies, is redriven and succeeds, as its timeline prints."""
    clock, store, queue, worker, job_id = dead_job(seed)
    clock.advance(300.0)
    queue.redrive(job_id, reason="mail relay fixed", by="operator")
    worker.run_one()
    return timeline.text(store.events(), invariants.check(store, final=True))


def test_the_same_seed_prints_the_same_timeline_and_another_seed_does_not():
    assert story(1) == story(1)
    assert story(1) != story(2)  # the seed owns the jitter: a different draw, a different run
