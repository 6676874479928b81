"""FM_008, the fix: a submit that brings a known idempotency key gets the first job back.

Under GUARDED the queue stores `order-1001` with job 1, in a column the schema keeps
UNIQUE, and looks it up in the same transaction that would insert a new job. The
checkout's retry finds it and gets job 1's id (`job.submit_absorbed`); there is one job for
the order, so the points are awarded once. The key names the business operation (the
order), so a retry at any time, even after the job has finished, is recognised, while a
different order, with its own key, is a new job as it should be.
"""

import functools

import pytest

from failure_modes.FM_008_duplicate_submission import scenario
from failure_modes.proof import explored_clean
from runtime import effects, states
from runtime.policies import GUARDED
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def ordered_once(policies=GUARDED) -> Simulation:
    """Order 1001 submitted once, as the scripted schedule starts."""
    world = Scenario(
        jobs=(scenario.order(1001),),
        handlers=scenario.HANDLERS,
        workers=scenario.WORKERS,
        policies=policies,
    )
    return Simulation(0, world)


def submit(sim: Simulation, number: int) -> int:
    spec = scenario.order(number)
    return sim.queue.submit(spec.kind, dict(spec.payload), idempotency_key=spec.key)


def test_scripted_schedule_holds_and_the_retry_gets_the_first_job_back():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert [row["id"] for row in result.store.all("SELECT id FROM jobs")] == [1]  # one job
    [absorbed] = [e for e in result.events if e.type == "job.submit_absorbed"]
    assert (absorbed.job_id, absorbed.detail["key"]) == (1, "order-1001")
    [points] = effects.applied(result.store)
    assert (points.job_id, points.key) == (1, "order-1001")


def test_a_late_retry_after_the_job_has_finished_is_still_absorbed():
    """The checkout's retry may come long after the job ran. The key is kept with the job,
    so the retry still gets job 1, already SUCCEEDED, and nothing runs again."""
    sim = ordered_once()
    sim.drain("w1")  # job 1 runs to the end: the points are awarded
    sim.advance(3600.0)  # an hour later the checkout, still unsure, submits again
    assert submit(sim, 1001) == 1
    assert not sim.queue.has_ready()
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    assert sim.queue.get(1).state == states.SUCCEEDED
    assert [e.job_id for e in effects.applied(result.store)] == [1]
    assert result.marks["submit.absorbed"] == 1


def test_a_different_order_is_a_new_job():
    """The guard deduplicates retries, not orders: order 1002 brings its own key and is
    accepted as job 2, and each order gets its points once."""
    sim = ordered_once()
    assert submit(sim, 1001) == 1  # the retry of order 1001
    assert submit(sim, 1002) == 2  # a new order
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    assert [(e.job_id, e.key) for e in effects.applied(result.store)] == [
        (1, "order-1001"),
        (2, "order-1002"),
    ]


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix, duplicate deliveries of a submit among
    them: no order's points are awarded twice, and the queue absorbed repeated submits, so
    the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["submit.absorbed"] == summary.marks["fault.duplicate_delivery"]
