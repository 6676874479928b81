"""A dependency that can be down and overloaded, and the load our retries put on it.

The remote answers each call from what it has served so far; the queue logs every call
with its attempt and answer; INV_009 counts the retries in every window against the bound
the dependency declared. These tests drive each part by hand, then the backoff that
decides whether retries arrive together.
"""

import random

import pytest

from runtime import dependency, invariants
from runtime.clock import SimClock
from runtime.dependency import Dependency, Remote
from runtime.effects import Effect
from runtime.errors import Unavailable
from runtime.queue import Queue, next_retry_at
from runtime.store import Store
from runtime.worker import Worker
from tests.support import POLICIES

MAIL = Dependency(sink="mail", down=(0.0, 1.0), capacity=2, window_s=0.05, retries_max=3)


def receipt(job):
    return Effect("mail", f"receipt-{job.payload['order']}", external=True)


def mailer(policies=POLICIES, *, down=(0.0, 1.0)) -> Queue:
    mail = Dependency("mail", down, MAIL.capacity, MAIL.window_s, MAIL.retries_max)
    queue = Queue(Store.memory(), SimClock(), random.Random(0), policies, {"mail": Remote(mail)})
    dependency.declare(queue.store, 0.0, mail)
    return queue


def called(store: Store):
    return [e for e in store.events() if e.type == dependency.CALLED]


# --- the remote ------------------------------------------------------------------------


def test_the_remote_refuses_while_down_and_serves_after():
    remote = Remote(MAIL)

    assert remote.answer(0.0) == "mail is down until 1.000"
    assert remote.answer(0.999) == "mail is down until 1.000"
    assert remote.answer(1.0) is None


def test_the_remote_serves_its_capacity_in_any_window_and_refuses_the_rest():
    remote = Remote(MAIL)

    assert [remote.answer(1.0), remote.answer(1.01)] == [None, None]
    assert remote.answer(1.02) == "mail is overloaded: 2 calls served in the last 0.05 s"
    assert remote.answer(1.05) is None  # the call at 1.0 has left the window
    assert remote.answer(1.059) == "mail is overloaded: 2 calls served in the last 0.05 s"


def test_a_flaky_remote_fails_its_share_of_calls_as_its_seeded_random_decides():
    flaky = Dependency("sync", (0.0, 0.0), 1_000, 1.0, 1_000, fail_rate=0.6)

    def answers(seed: int) -> list[str | None]:
        remote = Remote(flaky, random.Random(seed))
        return [remote.answer(float(n)) for n in range(1_000)]

    failed = sum(answer == "sync failed the call" for answer in answers(1))
    assert 550 <= failed <= 650  # 60% of 1,000 calls, give or take
    assert answers(1) == answers(1)  # the same seed, the same calls fail
    with pytest.raises(ValueError, match="seeded Random"):
        Remote(flaky)


@pytest.mark.parametrize(
    "fields",
    [
        {"down": (2.0, 1.0)},
        {"capacity": 0},
        {"retries_max": 0},
        {"window_s": 0.0},
        {"fail_rate": 1.5},
    ],
)
def test_a_dependency_that_makes_no_sense_is_refused_at_once(fields):
    values = {"sink": "mail", "down": (0.0, 1.0), "capacity": 2, "window_s": 0.05}
    with pytest.raises(ValueError):
        Dependency(**{**values, "retries_max": 3, **fields})


# --- the queue's calls -------------------------------------------------------------------


def test_a_refused_call_is_logged_applies_nothing_and_fails_the_attempt():
    queue = mailer()
    queue.submit("receipt", {"order": 1001})

    steps = Worker("w1", queue, {"receipt": receipt}).run_one()

    assert steps == ["leased", "started", "failed"]
    [call] = called(queue.store)
    assert (call.job_id, call.execution_id, call.worker) == (1, 1, "w1")
    assert call.detail["attempt"] == 1
    assert call.detail["answer"] == "mail is down until 1.000"
    assert queue.store.one("SELECT count(*) FROM effects")[0] == 0
    job = queue.get(1)
    assert job.last_error == "Unavailable: mail is down until 1.000"
    assert queue.marks["dependency.refused"] == 1


def test_a_served_call_applies_the_effect_and_says_so():
    queue = mailer(down=(0.0, 0.0))
    queue.submit("receipt", {"order": 1001})

    assert Worker("w1", queue, {"receipt": receipt}).run_one()[-1] == "acked"

    [call] = called(queue.store)
    assert call.detail["answer"] == "served"
    assert queue.store.one("SELECT count(*) FROM effects")[0] == 1


def test_unavailable_is_what_call_external_raises():
    queue = mailer()
    queue.submit("receipt", {"order": 1001})
    lease = queue.lease("w1")
    assert lease is not None
    queue.start(lease)
    with pytest.raises(Unavailable, match="down until"):
        queue.call_external(lease, receipt(queue.get(1)))


# --- INV_009 -----------------------------------------------------------------------------


def forged(retries_at: list[float], *, attempt: int = 2) -> Store:
    """A log with MAIL declared and one call per instant given, each by its own job."""
    store = Store.memory()
    dependency.declare(store, 0.0, MAIL)
    with store.transaction() as tx:
        for n, at in enumerate(retries_at, start=1):
            tx.event(
                at, dependency.CALLED, job=n, execution=n, worker="w1", sink="mail",
                key=f"receipt-{n}", attempt=attempt, answer="served",
            )  # fmt: skip
    return store


def load(store: Store, final: bool = True):
    return invariants.check(store, final=final, only=["INV_009"])


def test_retries_within_the_bound_hold():
    assert load(forged([1.0, 1.01, 1.02])) == []  # 3 in 50 ms: the bound itself
    assert load(forged([1.0, 1.01, 1.02, 1.05])) == []  # the fourth is in the next window


def test_one_retry_over_the_bound_in_a_window_is_reported_with_the_burst():
    [violation] = load(forged([0.5, 1.0, 1.01, 1.02, 1.049]))

    assert violation.message == (
        "4 retries reached mail within 0.05 s (from 1.000 to 1.049); it states at most 3"
    )
    assert violation.evidence.jobs == (2, 3, 4, 5)
    assert violation.evidence.events == (1, 3, 4, 5, 6)  # the declaration, then the burst


def test_first_attempts_are_the_work_itself_not_retries():
    assert load(forged([1.0, 1.0, 1.0, 1.0, 1.0], attempt=1)) == []


def test_a_log_with_no_declared_dependency_has_nothing_to_hold_to():
    store = Store.memory()
    with store.transaction() as tx:
        for _ in range(5):
            tx.event(
                1.0, dependency.CALLED, job=1, execution=1, worker="w1", sink="mail",
                key="receipt-1", attempt=2, answer="served",
            )  # fmt: skip
    assert load(store) == []


def test_the_check_holds_retries_in_time_order_even_if_logged_out_of_order():
    """Calls are logged in the order they were made; a clock that stepped back logs a later
    call with an earlier time. The count goes by time, whatever the log order."""
    assert load(forged([1.04, 1.0, 1.02, 1.01])) != []
    assert load(forged([1.2, 1.0, 1.1, 1.3])) == []


# --- the backoff -------------------------------------------------------------------------


def test_without_jitter_every_job_on_the_same_attempt_waits_the_same():
    no_jitter = POLICIES.without("backoff_jitter")
    rng = random.Random(0)

    waits = {next_retry_at(5.0, 2, rng, no_jitter) for _ in range(12)}

    assert waits == {7.0}  # base 1 s, doubled once: every one of them at 7.000


def test_with_full_jitter_the_same_attempt_spreads_over_the_ceiling():
    rng = random.Random(0)

    waits = [next_retry_at(5.0, 2, rng, POLICIES) for _ in range(12)]

    assert len(set(waits)) == 12
    assert all(5.0 <= at <= 7.0 for at in waits)
