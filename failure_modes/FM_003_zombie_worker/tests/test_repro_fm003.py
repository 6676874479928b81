"""FM_003, the break: without fencing, a worker paused past its lease writes as if it held it.

Baseline = GUARDED with exactly one lever off (`fencing`). The loyalty worker w1 leases
order 1001, has the points in hand and freezes for longer than its 30 s lease. The reaper
hands the job back to the queue, but leaves w1's attempt open; w2 leases the job with a
newer token. Then w1 wakes, unaware, and commits and acks: the store takes its word for it,
and the job is SUCCEEDED by an attempt that no longer held it, while w2 is still running it.
Only the log, replayed by INV_007, says which writes came from a lost lease.
"""

import functools

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_003_zombie_worker import scenario
from runtime import effects, invariants, timeline
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink

BASELINE = GUARDED.without("fencing")
BUILD = functools.partial(scenario.scenario, BASELINE)


def zombie_schedule(policies):
    """The scripted schedule, step by step, so a test can see where each worker ends."""
    sim = fm001.one_order(policies)
    assert sim.step("w1", until="effect_applied") == "effect_applied"
    sim.advance(policies.lease_s + 1)
    assert sim.reap() == [1]
    assert sim.step("w2", until="effect_applied") == "effect_applied"
    return sim


def test_the_zombie_writes_after_its_job_was_handed_on():
    result = scenario.run(BASELINE)

    applied, committed, succeeded = [v for v in result.violations if v.inv == "INV_007"]
    for violation, kind in (
        (applied, "effect.applied"),
        (committed, "execution.committed"),
        (succeeded, "job.succeeded"),
    ):
        assert violation.message == (
            f"execution 1 wrote {kind} after execution 2 took job 1 with a newer token"
        )
        assert violation.evidence.jobs == (1,)
        assert violation.evidence.executions == (1, 2)  # the stale attempt, then the newer one
        newer, stale = (result.events[seq - 1] for seq in violation.evidence.events)
        assert (newer.seq, newer.type, newer.worker) == (6, "job.leased", "w2")
        assert newer.detail["token"] == 2
        assert (stale.type, stale.worker, stale.execution_id) == (kind, "w1", 1)
    assert [v.evidence.events[1] for v in (applied, committed, succeeded)] == [8, 9, 10]
    assert result.violated() == ["INV_007"]


def test_the_stale_attempt_finishes_the_job_while_w2_still_holds_it():
    """The job ends SUCCEEDED, attributed to w1's execution 1, although its token is 2 and
    w2 held it. w2's commit goes through (its lease is valid); its ack is refused by the
    state machine alone (the job is already SUCCEEDED), so w2 lets go at `lease_lost` with
    nothing logged, and its execution stays COMMITTED for good."""
    sim = zombie_schedule(BASELINE)
    assert [sim.step("w1"), sim.step("w1"), sim.step("w1")] == ["committed", "acked", None]
    assert [sim.step("w2"), sim.step("w2")] == ["committed", "lease_lost"]
    result = sim.finish()

    job = result.store.one("SELECT state, fencing_token, attempts FROM jobs WHERE id = 1")
    assert (job["state"], job["fencing_token"], job["attempts"]) == ("SUCCEEDED", 2, 2)
    executions = result.store.all("SELECT id, worker, status FROM executions ORDER BY id")
    assert [tuple(row) for row in executions] == [(1, "w1", "DONE"), (2, "w2", "COMMITTED")]
    [done] = [e for e in result.events if e.type == "job.succeeded"]
    assert (done.worker, done.execution_id) == ("w1", 1)
    assert "lease.lost" not in [e.type for e in result.events]  # nothing was refused by a fence


def test_the_reaper_hands_the_job_on_but_leaves_the_old_attempt_open():
    """Without fencing the reaper works visibility-timeout style: the job goes back to
    PENDING, the expired attempt is not revoked. Its worker is never told, and nothing
    in the store would stop it."""
    result = scenario.run(BASELINE)

    [expired] = [e for e in result.events if e.type == "lease.expired"]
    assert (expired.worker, expired.execution_id) == ("reaper", 1)
    assert expired.detail["job_state"] == ["RUNNING", "PENDING"]
    assert "execution_state" not in expired.detail  # execution 1 stays IN_PROGRESS
    moves = [
        e.detail["execution_state"]
        for e in result.events
        if e.execution_id == 1 and "execution_state" in e.detail
    ]
    assert moves == [
        [None, "LEASED"],
        ["LEASED", "IN_PROGRESS"],
        ["IN_PROGRESS", "COMMITTED"],  # w1's commit, 1 s after its lease had expired
        ["COMMITTED", "DONE"],
    ]


def test_the_commit_boundary_still_keeps_the_points_single():
    """Why INV_001 does not break here: the commit boundary writes the effect inside the
    commit, keyed by job, so w2's commit finds w1's ledger entry and absorbs it. One
    entry, 50 points. The damage is who finished the job, not how many times it paid."""
    result = scenario.run(BASELINE)

    [only] = effects.applied(result.store)
    assert (only.key, only.execution_id) == ("order-1001", 1)  # written by the zombie
    [absorbed] = [e for e in result.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.detail["first_execution"]) == ("w2", 1)
    assert "INV_001" not in result.violated()


def test_the_final_database_shows_it_too():
    """INV_007 replays the log, so a database with the writes in it fails the check at the
    end, not only step by step: `fmlab check --db lab.db` finds a zombie's writes after the
    fact."""
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


def test_exploration_finds_a_zombie_without_being_told_where_to_pause():
    """Seeded runs pause workers past their lease, jump the clock and crash at random; any
    worker that wakes after its lease ran out and writes is a zombie. Seed 1 has two."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_007" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_pause_exactly_as_long_as_the_lease():
    """The first failing seed, shrunk: one order, one worker, two steps. w1 leases the job,
    pauses for exactly 30 s, and at 30.000, the instant its lease runs out and before any
    reaper sweeps, writes `execution.started`. No second worker is needed: a lease that
    has expired is lost, whether or not anyone has taken the job yet."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_007")
    assert shrunk.steps <= 3, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_007")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == ["switch on pause@leased: yes", "fault after w1 leased: pause@leased"]
    [zombie] = result.violations
    assert zombie.message == (
        "execution 1 wrote execution.started at 30.000, after its lease expired at 30.000"
    )
    assert not [e for e in result.events if e.worker == "reaper"]


def test_extra_lesson_with_the_commit_boundary_off_too_the_zombie_pays_twice():
    """Not this failure mode's baseline (that turns off fencing alone): a lesson in defence
    in depth. Let w1 freeze after `started`, before its handler ran, in a world without the
    commit boundary either: w2 awards the points, then the zombie wakes and awards them
    again (INV_001). With the commit boundary still off but fencing on, the zombie's write
    is refused and the points are awarded once: each guard covers the other's gap."""

    def zombie_after_started(policies):
        sim = fm001.one_order(policies)
        sim.step("w1", until="started")
        sim.advance(policies.lease_s + 1)
        sim.reap()
        sim.step("w2", until="effect_applied")
        sim.drain("w1")
        sim.drain("w2")
        return sim.finish()

    neither = zombie_after_started(BASELINE.without("commit_boundary"))
    [twice] = [v for v in neither.violations if v.inv == "INV_001"]
    assert twice.message == (
        "job 1's effect ledger/order-1001 was applied 2 times, by executions 2 and 1"
    )
    assert len(effects.applied(neither.store)) == 2

    fenced = zombie_after_started(GUARDED.without("commit_boundary"))
    assert fenced.violations == []
    [only] = effects.applied(fenced.store)
    assert only.execution_id == 2
