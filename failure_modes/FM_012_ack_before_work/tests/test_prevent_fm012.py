"""FM_012, the fix: acknowledge only after the work is committed.

Under GUARDED the job stays RUNNING on a lease until its receipt is committed. A worker that
dies before that leaves a lease that runs out; the reaper returns the job to PENDING and
another worker writes the receipt. Delivery becomes at-least-once, which is why the effect
itself must absorb a repeat (FM_001's commit boundary does, here).
"""

import functools

import pytest

from failure_modes.FM_012_ack_before_work import scenario
from failure_modes.proof import explored_clean
from runtime import effects, states
from runtime.policies import GUARDED
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert [e for e in result.events if e.detail.get("on_receipt")] == []
    [expired] = [e for e in result.events if e.type == "lease.expired"]
    assert (expired.worker, expired.job_id, expired.execution_id) == ("reaper", 1, 1)
    assert expired.detail["job_state"] == ["RUNNING", "PENDING"]
    [swept] = [e for e in result.events if e.type == "reaper.swept"]
    assert swept.detail["rescued"] == [1]
    # w2's attempt: the receipt, then the commit, then the ack, in that order.
    assert [(e.type, e.execution_id) for e in result.events[-3:]] == [
        ("effect.applied", 2),
        ("execution.committed", 2),
        ("job.succeeded", 2),
    ]
    [only] = effects.applied(result.store)
    assert (only.job_id, only.execution_id, only.key) == (1, 2, "receipt-1001")


def test_a_crash_before_the_commit_leaves_a_lease_not_a_lie():
    """Walk the rescue step by step: after w1 dies the job is RUNNING, not SUCCEEDED; once
    the lease has run out the reaper hands it back, and w2 does the work."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.receipt(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=GUARDED,
        ),
    )
    sim.step("w1", until="started")
    sim.crash("w1")
    assert sim.queue.get(1).state == states.RUNNING  # unfinished, and the queue knows it
    assert sim.reap() == []  # the lease has not run out yet
    sim.advance(GUARDED.lease_s)
    assert sim.reap() == [1]
    assert sim.queue.get(1).state == states.PENDING
    sim.drain("w2")
    result = sim.finish()

    assert result.violations == []
    assert sim.queue.get(1).state == states.SUCCEEDED
    [only] = effects.applied(result.store)
    assert only.execution_id == 2


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, clock jumps, failed transactions): no violation, and the reaper rescued
    jobs whose worker let go before acking, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
