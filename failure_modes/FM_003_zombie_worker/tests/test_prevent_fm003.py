"""FM_003, the fix: fencing. A lost lease is revoked, and every worker write is checked.

Under GUARDED each lease carries a fencing token that grows with every lease of the job.
The reaper marks an expired attempt ABORTED, and the store lets a worker's write (start,
heartbeat, commit, ack, fail) through only while its token is the job's newest, its
execution is open and its lease has not expired. A zombie that wakes finds its write
refused (`lease.lost`), changes nothing, and lets go; the new holder finishes the job.
"""

import functools

import pytest

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_003_zombie_worker import scenario
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.policies import GUARDED
from runtime.sim import Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def one_order(policies=GUARDED) -> Simulation:
    return fm001.one_order(policies)


def test_scripted_schedule_holds_every_invariant():
    """The same pause: the reaper revokes execution 1, w1's late commit is refused by the
    fence, and w2's execution 2 awards the points once and finishes the job."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    [expired] = [e for e in result.events if e.type == "lease.expired"]
    assert (expired.worker, expired.execution_id) == ("reaper", 1)
    assert expired.detail["execution_state"] == ["IN_PROGRESS", "ABORTED"]  # revoked
    [refused] = [e for e in result.events if e.type == "lease.lost"]
    assert (refused.seq, refused.worker, refused.execution_id) == (8, "w1", 1)
    assert refused.detail["action"] == "commit"
    assert refused.detail["reason"] == "token 1 is stale; job 1 is at 2"
    assert refused.detail["token"] == 1
    assert result.marks["fence.refused"] == 1
    assert not [e for e in result.events[refused.seq :] if e.execution_id == 1]
    [only] = effects.applied(result.store)
    assert (only.key, only.execution_id) == ("order-1001", 2)
    assert (result.events[-1].type, result.events[-1].worker) == ("job.succeeded", "w2")
    executions = result.store.all("SELECT id, status FROM executions ORDER BY id")
    assert [tuple(row) for row in executions] == [(1, "ABORTED"), (2, "DONE")]


def test_the_zombie_lets_go_and_the_new_holder_finishes():
    sim = one_order()
    sim.step("w1", until="effect_applied")
    sim.advance(GUARDED.lease_s + 1)  # w1 freezes past its lease
    assert sim.reap() == [1]
    assert sim.step("w2", until="effect_applied") == "effect_applied"
    assert sim.step("w1") == "lease_lost"  # its commit is refused; it holds nothing now
    assert [sim.step("w2"), sim.step("w2")] == ["committed", "acked"]
    assert sim.finish().violations == []


def test_a_write_at_the_instant_the_lease_expires_is_refused_too():
    """The shrunk baseline failure, fenced: w1 pauses exactly 30 s after leasing and tries
    to start at 30.000, before any reaper has swept. The token is still the newest, but the
    lease has run out, and that is enough: the fence checks the expiry, not just the token.
    The reaper then hands the job on, and w1, as a fresh attempt, runs it."""
    sim = one_order()
    assert sim.step("w1") == "leased"
    sim.advance(GUARDED.lease_s)
    assert sim.step("w1") == "lease_lost"
    [refused] = [e for e in sim.store.events() if e.type == "lease.lost"]
    assert (refused.detail["action"], refused.detail["reason"]) == (
        "start",
        "lease expired at 30.000",
    )
    assert sim.reap() == [1]
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    [only] = effects.applied(result.store)
    assert only.execution_id == 2


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (pauses past the lease, clock jumps,
    crashes, lost acks, failed transactions): no violation, and the fence refused stale
    writes, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["fault.pause"] > 0  # zombies were made, not only crashes
