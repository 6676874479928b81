"""FM_010, the break: a lease measured on the worker's own wall clock moves when that clock steps.

Baseline = GUARDED with exactly one lever off (`store_clock`). Every other guard is on: the
fence still checks each worker write, but it measures the lease's expiry on the wall clock
of the worker that writes. w1 leases order 1001 until 30.000 and starts; NTP steps w1's
clock back 30 s; the work takes 35 s. At 35.000 by the store's clock (the clock that stamps
the log) the lease is 5 s gone, but w1's clock reads 5.000, so the fence lets its effect,
its commit and its ack through. Nobody else had taken the job yet, so nothing looks wrong:
only the log, replayed by INV_007 on the store's time, shows writes made after the lease
expired.
"""

import functools

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_010_clock_jump import scenario
from runtime import effects, invariants, timeline
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import Simulation

BASELINE = GUARDED.without("store_clock")
BUILD = functools.partial(scenario.scenario, BASELINE)


def one_order(policies=BASELINE) -> Simulation:
    """Order 1001 and two workers, driven step by step (FM_001's world)."""
    return fm001.one_order(policies)


def test_the_worker_writes_after_its_lease_expired_by_the_stores_clock():
    """Three writes, all at 35.000 by the store's clock, all after the lease that ran out at
    30.000: the ledger entry, the commit and the ack. Each is reported with the job, the
    execution and the seq of the write."""
    result = scenario.run(BASELINE)

    applied, committed, succeeded = result.violations
    for violation, kind, seq in (
        (applied, "effect.applied", 5),
        (committed, "execution.committed", 6),
        (succeeded, "job.succeeded", 7),
    ):
        assert violation.inv == "INV_007"
        assert violation.message == (
            f"execution 1 wrote {kind} at 35.000, after its lease expired at 30.000"
        )
        assert violation.evidence.jobs == (1,)
        assert violation.evidence.executions == (1,)  # no newer lease: nobody took the job
        assert violation.evidence.events == (seq,)
        stale = result.events[seq - 1]
        assert (stale.type, stale.worker, stale.execution_id, stale.at) == (kind, "w1", 1, 35.0)
    assert result.violated() == ["INV_007"]


def test_the_log_shows_the_step_and_the_deadline_it_moved():
    """The lease was written on the store's time (w1's clock still agreed at 0.000): until
    30.000. Then the fault note: w1's wall clock stepped back 30 s. The store's clock goes
    on; at the commit it reads 35.000 while w1's reads 5.000, and without the lever the
    fence asks w1's."""
    sim = one_order()
    assert sim.step("w1", until="started") == "started"
    sim.step_wall_clock("w1", scenario.NTP_STEP_S)
    sim.advance(scenario.SLOW_WORK_S)
    assert (sim.clock.now(), sim.walls["w1"].now()) == (35.0, 5.0)
    assert sim.step("w1") == "effect_applied"
    assert sim.step("w1") == "committed"  # let through: 5.000 < 30.000 on w1's clock

    leased, step = (e for e in sim.store.events() if e.seq in (2, 4))
    assert (leased.type, leased.worker, leased.at) == ("job.leased", "w1", 0.0)
    assert leased.detail["lease_expires_at"] == 30.0
    assert (step.type, step.worker, step.at) == ("fault.wall_clock_step", "w1", 0.0)
    assert step.detail["seconds"] == -30.0


def test_the_job_succeeds_by_w1_and_no_fence_said_a_word():
    """The damage is invisible from the queue: job 1 SUCCEEDED at its first attempt, by w1,
    with one ledger entry. No `lease.lost`, no rescue (the reaper swept at 35.000 and found
    the job done), and w2 never leased anything. The lease said "30 s", and the store let
    w1 act for 35."""
    result = scenario.run(BASELINE)

    job = result.store.one("SELECT state, fencing_token, attempts FROM jobs WHERE id = 1")
    assert (job["state"], job["fencing_token"], job["attempts"]) == ("SUCCEEDED", 1, 1)
    executions = result.store.all("SELECT id, worker, status FROM executions ORDER BY id")
    assert [tuple(row) for row in executions] == [(1, "w1", "DONE")]
    [only] = effects.applied(result.store)
    assert (only.key, only.execution_id) == ("order-1001", 1)
    assert "lease.lost" not in [e.type for e in result.events]
    [swept] = [e for e in result.events if e.type == "reaper.swept"]
    assert swept.detail["rescued"] == []
    assert "fence.refused" not in result.marks


def test_the_final_database_shows_it_too():
    """INV_007 replays the log on the log's own time, never a worker's clock and never a
    fault note, so a database with these writes in it fails the check at the end too:
    `fmlab check --db lab.db` finds them after the fact."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True, only=["INV_007"])
    assert len(final) == 3
    assert [str(v) for v in final] == [str(v) for v in result.violations]


def test_the_same_run_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert timeline.as_json(first.events, first.violations) == timeline.as_json(
        second.events, second.violations
    )


def test_exploration_finds_a_lease_measured_on_a_stepped_clock():
    """Seeded runs step one worker's wall clock by -15, -30, +30 or +60 s at random, among
    crashes, pauses, store clock jumps and failed transactions; seed 17 is the first whose
    stepped worker then writes after a lease expired by the store's clock."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert summary.failing == {"INV_007": [17]}, summary.failing


def test_the_failure_shrinks_to_a_lease_born_expired():
    """Seed 17, shrunk: 8 steps, three orders, two workers, and the shrinker can drop none
    of them. w2 leases order 1001; its clock steps back 30 s, exactly one lease; it commits
    and crashes before its ack; as a fresh process on the same machine (the same stepped
    clock) it leases order 1003. That deadline is written on w2's clock: -30.000 + 30 s =
    0.000, the very instant it was granted. By the store's clock the lease is expired at
    birth; by w2's it has 30 s to run, so w2's start at 0.000 is let through."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_007")
    assert (shrunk.steps, shrunk.case.jobs, shrunk.case.workers) == (8, 3, 2)
    result = replay(BUILD, shrunk.case, stop_on="INV_007")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == [
        "switch on crash@committed: yes",
        "switch on wall_clock_step: yes",
        "next: w2",
        "fault after w2 leased: wall_clock_step",
        "wall clock step: 3",  # CLOCK_JUMPS[3] = -1 lease: back 30 s
        "next: w2",
        "next: w2",
        "next: w2",
        "fault after w2 committed: crash@committed",
        "next: w2",
        "next: w2",
    ]
    [step] = [e for e in result.events if e.type == "fault.wall_clock_step"]
    assert (step.worker, step.detail["seconds"]) == ("w2", -30.0)
    born = result.events[-2]
    assert (born.type, born.worker, born.job_id, born.execution_id) == ("job.leased", "w2", 3, 3)
    assert (born.at, born.detail["lease_expires_at"]) == (0.0, 0.0)
    [violation] = result.violations
    assert violation.message == (
        "execution 3 wrote execution.started at 0.000, after its lease expired at 0.000"
    )
    assert violation.evidence.events == (result.events[-1].seq,)


def test_a_worker_whose_clock_is_behind_takes_leases_that_are_born_expired():
    """The clock steps before the lease instead of during it. w1's clock reads 45 s behind
    (a VM restored from a snapshot, an NTP correction) when it leases at 20.000: the
    deadline it writes, 5.000, was 15 s in the past before the lease existed. Its own clock
    says the lease has 30 s left, so its start is let through (INV_007). The reaper, on the
    store's clock, hands the job back at its very next sweep, and w1's commit is refused,
    by the execution's state this time, not the clock. Then w1 leases the job again, born
    expired again, and this time finishes it before any sweep: a worker whose clock is a
    lease or more behind can never hold a valid lease, and never notices."""
    sim = one_order()
    sim.advance(20)
    sim.step_wall_clock("w1", -45)
    assert [sim.step("w1"), sim.step("w1")] == ["leased", "started"]

    leased = next(e for e in sim.store.events() if e.type == "job.leased")
    assert (leased.at, leased.detail["lease_expires_at"]) == (20.0, 5.0)
    [accepted] = sim.violations
    assert accepted.message == (
        "execution 1 wrote execution.started at 20.000, after its lease expired at 5.000"
    )

    assert sim.reap() == [1]  # expired by the store's clock since before it was granted
    assert [sim.step("w1"), sim.step("w1")] == ["effect_applied", "lease_lost"]
    [refused] = [e for e in sim.store.events() if e.type == "lease.lost"]
    assert refused.detail["reason"] == "execution is ABORTED, job is PENDING"

    sim.drain("w1")
    result = sim.finish()
    again = [e for e in result.events if e.type == "job.leased"][-1]
    assert (again.execution_id, again.at, again.detail["lease_expires_at"]) == (2, 20.0, 5.0)
    stale = [v.evidence.events[0] for v in result.violations if v.evidence.executions == (2,)]
    assert [result.events[seq - 1].type for seq in stale] == [
        "execution.started",
        "effect.applied",
        "execution.committed",
        "job.succeeded",
    ]
    assert result.violated() == ["INV_007"]


def test_a_clock_ahead_writes_a_deadline_too_late_instead():
    """The other direction breaks liveness, not this invariant: w1's clock is 60 s ahead
    when it leases, so the deadline it writes is 90.000, a 90 s lease. w1 dies right after.
    The reaper, on the store's clock, finds nothing to rescue at 31.000; the order waits
    until 90.000 for a worker that is long gone."""
    sim = one_order()
    sim.step_wall_clock("w1", 60)
    assert sim.step("w1") == "leased"
    leased = next(e for e in sim.store.events() if e.type == "job.leased")
    assert leased.detail["lease_expires_at"] == 90.0
    sim.crash("w1")

    sim.advance(31)
    assert sim.reap() == []
    sim.advance(59)
    assert sim.reap() == [1]


def test_extra_lesson_the_token_still_refuses_once_the_job_has_a_newer_lease():
    """Why INV_001 does not break here (the issue's table listed it): with fencing and the
    commit boundary on, a stepped clock opens only the window between the lease's real
    expiry and the next lease of the job. Here the reaper (on the store's clock) sweeps at
    35.000, before w1 writes, and w2 leases the job with token 2. w1's clock still says its
    lease is valid, but the token check needs no clock: `token 1 is stale; job 1 is at 2`.
    One ledger entry, by w2, and no violation, even without the lever."""
    sim = one_order()
    sim.step("w1", until="started")
    sim.step_wall_clock("w1", scenario.NTP_STEP_S)
    sim.advance(scenario.SLOW_WORK_S)
    assert sim.reap() == [1]
    assert sim.step("w2", until="effect_applied") == "effect_applied"
    assert [sim.step("w1"), sim.step("w1")] == ["effect_applied", "lease_lost"]
    sim.drain("w2")
    result = sim.finish()

    assert result.violations == []
    [refused] = [e for e in result.events if e.type == "lease.lost"]
    assert (refused.worker, refused.detail["action"]) == ("w1", "commit")
    assert refused.detail["reason"] == "token 1 is stale; job 1 is at 2"
    [only] = effects.applied(result.store)
    assert (only.key, only.execution_id) == ("order-1001", 2)


def test_extra_lesson_with_fencing_off_too_the_commit_boundary_keeps_the_points_single():
    """The same schedule with fencing off as well: now nothing checks w1's token or its
    lease, so w1 commits and acks after w2 took the job (INV_007, `with a newer token`, as
    in FM_003). The points are still awarded once: the commit boundary writes the effect
    inside the commit, keyed by job, and w2's commit absorbs the repeat. And the clock no
    longer matters at all: without a fence nothing reads it to refuse a write, so the run
    is the same whether the lever is on or off. Only with the commit boundary off as well
    does an effect land twice (FM_001, FM_003)."""

    def relet(policies):
        sim = one_order(policies)
        sim.step("w1", until="started")
        sim.step_wall_clock("w1", scenario.NTP_STEP_S)
        sim.advance(scenario.SLOW_WORK_S)
        sim.reap()
        sim.step("w2", until="effect_applied")
        sim.drain("w1")
        sim.drain("w2")
        return sim.finish()

    unfenced = relet(BASELINE.without("fencing"))
    assert unfenced.violated() == ["INV_007"]
    assert [v.message for v in unfenced.violations] == [
        f"execution 1 wrote {kind} after execution 2 took job 1 with a newer token"
        for kind in ("effect.applied", "execution.committed", "job.succeeded")
    ]
    [only] = effects.applied(unfenced.store)
    assert (only.key, only.execution_id) == ("order-1001", 1)
    [absorbed] = [e for e in unfenced.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.detail["first_execution"]) == ("w2", 1)

    same = relet(GUARDED.without("fencing"))
    assert same.events == unfenced.events
