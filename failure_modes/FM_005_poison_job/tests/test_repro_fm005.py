"""FM_005, the break: without a retry budget a job that can never succeed is retried forever.

Baseline = GUARDED with exactly one lever off (`retry_budget`). Job 1 is a refund sent in
an old client's format (the order under `order_id`), so its handler raises KeyError on
every attempt. Every failure is recorded, and every failure schedules one more retry: the
queue tries a fourth time, a fifth, a thirty-fourth, and the job never ends. Nothing goes
DEAD, so nothing asks a person to look.
"""

import functools
import random

from failure_modes.FM_005_poison_job import scenario
from runtime import effects, invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.queue import Queue
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import STEPS_PER_JOB, RunResult

BASELINE = GUARDED.without("retry_budget")
BUILD = functools.partial(scenario.scenario, BASELINE)
POISON = scenario.POISON


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_poison_job_is_attempted_past_its_budget():
    """The budget is 3 (`attempts_max`); the queue leased the refund a fourth time."""
    result = scenario.run(BASELINE)

    [unbounded] = by_inv(result, "INV_006")
    assert unbounded.message == "job 1 was attempted 4 times; its budget is 3"
    assert unbounded.evidence.jobs == (POISON,)
    assert unbounded.evidence.executions == (1, 3, 4, 5)  # execution 2 is w2's order
    leased = [result.events[seq - 1] for seq in unbounded.evidence.events]
    assert [(e.type, e.worker, e.detail["attempt"]) for e in leased] == [
        ("job.leased", "w1", 1),
        ("job.leased", "w1", 2),
        ("job.leased", "w1", 3),
        ("job.leased", "w1", 4),  # the one a budget would have refused
    ]


def test_every_attempt_fails_the_same_way_and_schedules_another():
    """Nothing is hidden: each failure is on record with its error. What is missing is an
    end: after the fourth failure, as after the first, the answer is "retry later"."""
    result = scenario.run(BASELINE)

    failures = [e for e in result.events if e.job_id == POISON and e.detail.get("error")]
    assert [(e.type, e.detail["attempts"], e.detail["error"]) for e in failures] == [
        ("job.retry_scheduled", n, "KeyError: 'order'") for n in (1, 2, 3, 4)
    ]
    assert failures[-1].detail["retry_at"] > failures[-1].at  # a fifth attempt is on its way
    assert "job.dead" not in {e.type for e in result.events}
    assert invariants.check(result.store, only=["INV_005"]) == []  # every failure signalled


def test_the_job_never_ends():
    """At the end of the run the refund is neither SUCCEEDED nor DEAD: it is waiting for its
    fifth attempt, as it will after its fiftieth. The last move of its history is one more
    retry scheduled."""
    result = scenario.run(BASELINE)

    [unfinished] = by_inv(result, "INV_004")
    assert unfinished.message == "job 1 was accepted but ended the run PENDING"
    assert unfinished.evidence.jobs == (POISON,)
    assert unfinished.evidence.executions == (1, 3, 4, 5)
    [last_move] = [result.events[seq - 1] for seq in unfinished.evidence.events]
    assert (last_move.type, last_move.execution_id) == ("job.retry_scheduled", 5)
    assert last_move.detail["job_state"] == ["RUNNING", "PENDING"]
    # Liveness: only the end-of-run check can say "never"; a step-by-step check sees a job
    # that is simply waiting for its retry.
    assert invariants.check(result.store, only=["INV_004"]) == []


def test_the_queue_shows_a_job_waiting_for_a_retry_and_nothing_dead():
    """The quiet symptom: the other work gets through (order 1001's points were awarded), no
    job is dead, so a dead-letter alarm never fires. The queue holds one job pending, with
    the same error it had after its first attempt."""
    result = scenario.run(BASELINE)

    [awarded] = effects.applied(result.store)
    assert (awarded.key, awarded.job_id) == ("order-1001", 2)
    queue = Queue(result.store, SimClock(180.0), random.Random(0), BASELINE)
    stats = queue.statistics()
    assert (stats.pending, stats.succeeded, stats.dead) == (1, 1, 0)
    job = queue.get(POISON)
    assert (job.state, job.attempts, job.last_error) == ("PENDING", 4, "KeyError: 'order'")
    assert result.violated() == ["INV_004", "INV_006"]


def test_left_alone_it_is_retried_until_the_run_gives_up():
    """An explored run never goes quiet: the refund takes a worker each time its backoff
    runs out, and its error history grows by one event per attempt, until the run's steps
    (100 a job) run out. Here that is dozens of attempts; in production, forever."""
    result = scenario.run(BASELINE, seed=0)

    assert result.steps == STEPS_PER_JOB * 3
    leases = [e for e in result.events if e.type == "job.leased" and e.job_id == POISON]
    errors = [e for e in result.events if e.job_id == POISON and e.detail.get("error")]
    assert len(leases) > 10 * GUARDED.attempts_max, len(leases)
    assert len(errors) >= len(leases) - 1  # each finished attempt left one more error
    assert {"INV_004", "INV_006"} <= set(result.violated())


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_endless_retries_without_being_told_where():
    """No fault is needed: a handler that always raises is enough. Every seed of the
    baseline attempts the refund past its budget, so the first one finds it."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert {"INV_006", "INV_004"} <= set(summary.failing), summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: the refund alone, on one worker, with no fault and
    no backoff delay. w1 leases it, starts it and fails it, three times over, and leases it
    a fourth time: ten steps. No decision matters; the plainest schedule fails, because
    the poison is in the job, not in the schedule."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_006")
    assert shrunk.steps == 10, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_006")
    assert [describe(c) for c in result.decisions() if c.value] == []
    assert [str(v) for v in result.violations] == [
        "INV_006: job 1 was attempted 4 times; its budget is 3 "
        "(jobs [1], executions [1, 2, 3, 4], events [2, 5, 8, 11])"
    ]
    assert [e.type for e in result.events[1:]] == [
        *["job.leased", "execution.started", "job.retry_scheduled"] * 3,
        "job.leased",
    ]
