"""FM_004, the fix: a reaper takes expired leases back, so a dead worker cannot keep a job.

Under GUARDED the reaper sweeps every lease that has run out: the dead execution is
ABORTED, the job goes back to PENDING (`lease.expired`), and the next worker runs it. The
sweep is safe even when the "dead" worker was only slow, because fencing refuses whatever
it tries to write after losing its lease.
"""

import functools

import pytest

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_004_stuck_job import scenario
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.policies import GUARDED

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    [expired] = [e for e in result.events if e.type == "lease.expired"]
    assert (expired.worker, expired.job_id, expired.execution_id) == ("reaper", 1, 1)
    assert expired.detail["job_state"] == ["RUNNING", "PENDING"]
    assert expired.detail["execution_state"] == ["IN_PROGRESS", "ABORTED"]
    assert expired.detail["error"] == "lease of w1 expired at 30.000"
    [swept] = [e for e in result.events if e.type == "reaper.swept"]
    assert swept.detail["rescued"] == [1]
    assert result.events[-1].type == "job.succeeded"
    [only] = effects.applied(result.store)
    assert (only.job_id, only.execution_id) == (1, 2)  # w2's run of the rescued job, once


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, clock jumps, failed transactions): no violation, and the reaper rescued
    expired leases, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)


def test_a_worker_that_was_only_slow_loses_its_job_safely():
    """The reaper cannot tell a dead worker from a slow one; it does not have to. w1 stalls
    past its lease, the reaper hands the job to w2, w2 finishes it, and when w1 wakes up
    its commit is refused by the fence: one effect, no violation."""
    sim = fm001.one_order(GUARDED)
    sim.step("w1", until="started")
    sim.advance(GUARDED.lease_s + 1)  # w1 stalls (a GC pause, a stopped VM) past its lease
    assert sim.reap() == [1]
    sim.drain("w2")
    assert sim.step("w1", until="lease_lost") == "lease_lost"  # w1 wakes up and tries to commit
    result = sim.finish()

    assert result.violations == []
    [refused] = [e for e in result.events if e.type == "lease.lost"]
    assert (refused.worker, refused.execution_id, refused.detail["action"]) == ("w1", 1, "commit")
    [only] = effects.applied(result.store)
    assert only.execution_id == 2
