"""FM_004, the break: without a reaper, a dead worker's expired lease holds its job forever.

Baseline = GUARDED with exactly one lever off (`reaper`). The loyalty worker w1 leases order
1001, starts it and dies. Its lease runs out at 30 s, but a lease expires only on paper:
nothing sweeps it, so the job stays RUNNING. w2 is idle the whole time and finds nothing to
do, no attempt fails, and the customer never gets the points. Only the end-of-run check,
"every accepted job has ended", sees it.
"""

import functools
import random

from failure_modes.FM_004_stuck_job import scenario
from runtime import effects, invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.queue import Queue
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("reaper")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_job_ends_the_run_still_running_on_a_dead_lease():
    result = scenario.run(BASELINE)

    [stuck] = by_inv(result, "INV_004")
    assert stuck.message == "job 1 was accepted but ended the run RUNNING"
    assert stuck.evidence.jobs == (1,)
    assert stuck.evidence.executions == (1,)  # w1's attempt, the only one there ever was
    [last_move] = [result.events[seq - 1] for seq in stuck.evidence.events]
    assert (last_move.type, last_move.worker) == ("job.leased", "w1")
    assert last_move.detail["job_state"] == ["PENDING", "RUNNING"]
    assert last_move.detail["lease_expires_at"] == 30.0  # a deadline nobody enforced


def test_the_lease_ran_out_and_nothing_noticed():
    """At 60 s the lease is 30 s past its expiry, yet nothing in the log moved after w1 died:
    no `lease.expired`, not even a `reaper.swept` (without the lever `reap()` is a no-op),
    and w2, idle, never leased anything."""
    result = scenario.run(BASELINE)

    assert [(e.type, e.worker) for e in result.events] == [
        ("job.submitted", None),
        ("job.leased", "w1"),
        ("execution.started", "w1"),
        ("fault.crash", "w1"),
    ]
    execution = result.store.one("SELECT status, lease_expires_at FROM executions WHERE id = 1")
    assert (execution["status"], execution["lease_expires_at"]) == ("IN_PROGRESS", 30.0)
    assert effects.applied(result.store) == []  # the customer has no points


def test_the_queue_looks_healthy_and_nothing_fails():
    """The symptom is quiet: no attempt failed, no job is dead, and the queue is empty. A
    queue-depth alarm sees nothing waiting; only a job that never ends."""
    result = scenario.run(BASELINE)

    types = [e.type for e in result.events]
    assert not {"job.dead", "job.retry_scheduled", "lease.lost"} & set(types)
    stats = Queue(result.store, SimClock(60.0), random.Random(0), BASELINE).statistics()
    assert (stats.pending, stats.running, stats.dead) == (0, 1, 0)
    assert stats.oldest_pending_age_s == 0.0
    assert result.violated() == ["INV_004"]


def test_only_the_end_of_run_check_sees_it():
    """INV_004 catches a RUNNING job on an expired lease at every step only once a reaper
    has swept past it. With no reaper there is no sweep to compare against, so the
    per-step check stays silent; the liveness check ("every accepted job has ended")
    is what names the job."""
    result = scenario.run(BASELINE)

    assert invariants.check(result.store, only=["INV_004"]) == []
    [stuck] = invariants.check(result.store, final=True, only=["INV_004"])
    assert stuck.message == "job 1 was accepted but ended the run RUNNING"


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_stuck_job_without_being_told_where_to_crash():
    """Seeded runs crash, pause, fail transactions and jump the clock at random. Any of them
    that makes a worker let go of a lease leaves that job stuck, so the very first seeds
    find one."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_004" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: one order, one worker; w1 leases the job and then a
    single fault makes it let go (today: a failed transaction right after `leased`, so
    the worker abandons the attempt, as it should, and counts on the lease running out).
    Nothing else happens: no reaper, so the run goes quiet with the job RUNNING. The
    decisions that matter: one fault site switched on, and it firing after w1's step."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_004")
    assert shrunk.steps <= 3, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_004")
    mattered = [describe(c) for c in result.decisions() if c.value]
    [fired] = [d for d in mattered if d.startswith("fault after ")]
    assert fired.startswith("fault after w1 "), mattered
    site = fired.rsplit(": ", 1)[1]
    assert mattered == [f"switch on {site}: yes", fired]
    assert [v.message for v in result.violations] == [
        "job 1 was accepted but ended the run RUNNING"
    ]
    assert not [e for e in result.events if e.worker == "reaper"]
