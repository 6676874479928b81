"""FM_010, the fix: one time authority. Lease deadlines are set and checked on the store's clock.

Under GUARDED the queue never reads a worker's wall clock for a deadline: `lease` and
`heartbeat` write "the store's now + 30 s", and the fence compares the deadline with the
store's now, the same clock that stamps the log and that the reaper sweeps by. A worker
whose clock stepped can believe what it likes; the store decides, and every party that
judges a lease judges it on one clock. Mark `clock.overruled` counts the times a worker's
clock disagreed and was not asked.
"""

import functools

import pytest

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_010_clock_jump import scenario
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.policies import GUARDED
from runtime.sim import Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)


def one_order(policies=GUARDED) -> Simulation:
    """Order 1001 and two workers, driven step by step (FM_001's world)."""
    return fm001.one_order(policies)


def test_scripted_schedule_holds_every_invariant():
    """The same step back and the same slow work: w1's commit at 35.000 is refused by the
    fence, which reads the store's clock (35.000), not w1's (5.000). w1's execution writes
    nothing more; the reaper aborts it and hands the job back; w2 awards the points once
    and finishes the job."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    [refused] = [e for e in result.events if e.type == "lease.lost"]
    assert (refused.seq, refused.at, refused.worker, refused.execution_id) == (5, 35.0, "w1", 1)
    assert refused.detail["action"] == "commit"
    assert refused.detail["reason"] == "lease expired at 30.000"
    assert refused.detail["token"] == 1
    assert result.marks["clock.overruled"] == 1  # w1's clock said 5.000 and was not asked
    assert result.marks["fence.refused"] == 1
    assert not [e for e in result.events[refused.seq :] if e.execution_id == 1 and e.worker == "w1"]

    [expired] = [e for e in result.events if e.type == "lease.expired"]
    assert (expired.worker, expired.execution_id) == ("reaper", 1)
    assert expired.detail["execution_state"] == ["IN_PROGRESS", "ABORTED"]
    [relet] = [e for e in result.events if e.type == "job.leased" and e.worker == "w2"]
    assert (relet.at, relet.detail["lease_expires_at"], relet.detail["token"]) == (35.0, 65.0, 2)
    [only] = effects.applied(result.store)
    assert (only.key, only.execution_id) == ("order-1001", 2)
    assert (result.events[-1].type, result.events[-1].worker) == ("job.succeeded", "w2")
    executions = result.store.all("SELECT id, worker, status FROM executions ORDER BY id")
    assert [tuple(row) for row in executions] == [(1, "w1", "ABORTED"), (2, "w2", "DONE")]


def test_the_worker_clock_is_read_but_never_believed():
    """Step by step: w1's clock reads 5.000 when the store's reads 35.000. The handler has
    run (`effect_applied` writes nothing with the commit boundary on), and the commit, the
    first write after the lease ran out, is where the fence says no."""
    sim = one_order()
    sim.step("w1", until="started")
    sim.step_wall_clock("w1", scenario.NTP_STEP_S)
    sim.advance(scenario.SLOW_WORK_S)
    assert (sim.clock.now(), sim.walls["w1"].now()) == (35.0, 5.0)
    assert [sim.step("w1"), sim.step("w1")] == ["effect_applied", "lease_lost"]
    assert sim.reap() == [1]
    sim.drain("w2")
    assert sim.finish().violations == []


def test_a_worker_whose_clock_is_behind_still_gets_a_full_lease():
    """The born-expired case, guarded: w1's clock reads 45 s behind when it leases at
    20.000. The deadline is the store's 20.000 + 30 s = 50.000, whatever w1's clock says
    (-25.000), so the lease is valid for its whole 30 s: the reaper finds nothing to take,
    and w1 does the job. Lease, start, commit and ack each overruled w1's clock."""
    sim = one_order()
    sim.advance(20)
    sim.step_wall_clock("w1", -45)
    assert sim.step("w1") == "leased"
    leased = next(e for e in sim.store.events() if e.type == "job.leased")
    assert (leased.at, leased.detail["lease_expires_at"]) == (20.0, 50.0)
    assert sim.walls["w1"].now() == -25.0

    assert sim.reap() == []
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    [only] = effects.applied(result.store)
    assert only.execution_id == 1
    assert result.marks["clock.overruled"] == 4


def test_a_forward_step_neither_extends_a_lease_nor_cuts_it_short():
    """w1's clock 60 s ahead when it leases: the deadline is still 30.000, not 90.000, so
    when w1 dies the reaper rescues the job at its first sweep after 30 s and w2 does it.
    And a step forward after the lease does not end it early: w1's start at 0.000 goes
    through although its own clock (60.000) says the lease ran out at 30.000."""
    sim = one_order()
    sim.step_wall_clock("w1", 60)
    assert sim.step("w1") == "leased"
    leased = next(e for e in sim.store.events() if e.type == "job.leased")
    assert leased.detail["lease_expires_at"] == 30.0
    sim.crash("w1")
    sim.advance(31)
    assert sim.reap() == [1]
    sim.drain("w2")
    assert sim.finish().violations == []

    sim = one_order()
    assert sim.step("w1") == "leased"
    sim.step_wall_clock("w1", 60)
    assert sim.step("w1") == "started"
    sim.drain("w1")
    result = sim.finish()
    assert result.violations == []
    assert "lease.lost" not in [e.type for e in result.events]


def test_a_heartbeat_extends_from_the_stores_now():
    """A heartbeat sets a new deadline too, so it is measured on the same clock: w1 leases
    at 0.000 (until 30.000), its clock steps back 30 s, and at 10.000 it renews: the lease
    now runs until 40.000 by the store's clock. On w1's clock (-20.000) the new deadline
    would have been 10.000, a renewal that expires the lease on the spot."""
    sim = one_order()
    lease = sim.queue.lease("w1")
    assert lease is not None and lease.expires_at == 30.0
    sim.advance(10)
    sim.step_wall_clock("w1", -30)
    renewed = sim.queue.heartbeat(lease)

    assert renewed.expires_at == 40.0
    [extended] = [e for e in sim.store.events() if e.type == "lease.extended"]
    assert (extended.at, extended.detail["lease_expires_at"]) == (10.0, 40.0)
    assert sim.marks["clock.overruled"] == 2  # the fence's check and the new deadline


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds of FM_001's world (three orders, two workers) with every fault site and
    steps of a worker's own wall clock: no violation, and the store overruled a stepped
    worker clock, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["fault.wall_clock_step"] > 0  # clocks were stepped, not only crashed
