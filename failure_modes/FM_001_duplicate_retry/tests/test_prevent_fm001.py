"""FM_001, the fix: with the commit boundary the effect and the commit are one transaction.

Under GUARDED, w1 dies with the points only computed in memory; nothing reached the ledger,
so w2's retry applies them once. If a worker dies after committing but before acking, the
retry's commit finds order 1001's entry already there and absorbs the repeat.
"""

import functools

import pytest

from failure_modes.FM_001_duplicate_retry import scenario
from failure_modes.proof import explored_clean
from runtime import effects, states
from runtime.faults import CrashAfter, FaultPlan
from runtime.policies import GUARDED
from runtime.sim import Scenario, Simulation

SEEDS = range(600)
BUILD = functools.partial(scenario.scenario, GUARDED)


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert [e.execution_id for e in effects.applied(result.store)] == [2]  # w2's retry, once


@pytest.mark.parametrize("chunk", range(3))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """600 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, clock jumps, failed transactions): no violation, and the commit boundary
    absorbed repeated effects, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 200 : (chunk + 1) * 200]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)


def test_recovery_after_a_crash_between_commit_and_ack():
    """Crash after the effect is committed, before the ack: the reaper rescues the lease,
    the retry's commit is absorbed, and the job ends SUCCEEDED with exactly one effect."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=GUARDED,
            faults=FaultPlan((CrashAfter("committed", worker="w1"),)),
        ),
    )
    sim.step("w1", until="committed")  # the crash fires here
    sim.advance(GUARDED.lease_s)
    assert sim.reap() == [1]
    sim.drain("w2")
    result = sim.finish()

    assert result.violations == []
    assert sim.queue.get(1).state == states.SUCCEEDED
    [only] = effects.applied(result.store)
    assert only.execution_id == 1  # w1's committed effect; w2's repeat was absorbed
    [absorbed] = [e for e in result.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.detail["first_execution"]) == ("w2", 1)
