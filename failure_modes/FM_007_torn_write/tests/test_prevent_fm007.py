"""FM_007, the fix: one operation, one transaction.

Under GUARDED the completion is two transactions, each whole: the commit (effect record,
execution COMMITTED, its event) and the ack (execution DONE, job SUCCEEDED, `job.succeeded`).
A crash or a failed transaction can fall before or after either, never inside: before the
commit nothing is written and the retry applies the points once; after it the retry's
commit absorbs the repeat; and a row never moves without the event that says so. The
reaper and the commit boundary do the rest.
"""

import functools

import pytest

from failure_modes.FM_007_torn_write import scenario
from failure_modes.proof import explored_clean
from runtime import effects, invariants
from runtime.faults import CRASH_STEPS
from runtime.policies import GUARDED
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def test_scripted_schedule_holds_every_invariant():
    """The same two crashes, at the nearest points the whole transactions have: w1 before
    its commit, w2 between commit and ack. The job ends SUCCEEDED, logged, one effect."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert [e.execution_id for e in effects.applied(result.store)] == [2]  # w2's commit, once
    assert result.store.one("SELECT state FROM jobs WHERE id = 1")["state"] == "SUCCEEDED"
    last = result.events[-1]
    assert (last.type, last.worker, last.execution_id) == ("job.succeeded", "w1", 3)
    assert last.detail["job_state"] == ["RUNNING", "SUCCEEDED"]
    [absorbed] = [e for e in result.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.detail["first_execution"]) == ("w1", 2)
    steps = {e.detail.get("after") for e in result.events if e.type == "fault.crash"}
    assert steps == {"effect_applied", "committed"}  # no torn steps exist to crash at


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_crash_after_any_step_leaves_rows_and_log_in_step(step):
    """w1 dies after `step`; the reaper hands the job on and w2 finishes it. Every row's
    state is the end of its logged history, on every step and at the end."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=GUARDED,
        ),
    )
    assert sim.step("w1", until=step) == step
    sim.crash("w1")
    sim.advance(GUARDED.lease_s)
    assert sim.reap() == [1]
    sim.drain("w2")
    result = sim.finish()

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert len(effects.applied(result.store)) == 1
    assert result.events[-1].type == "job.succeeded"


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, clock jumps, failed transactions): no violation, and retries' commits found
    the effect already recorded and absorbed it, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["fault.db_error"] > 0  # failed transactions were tried, too
