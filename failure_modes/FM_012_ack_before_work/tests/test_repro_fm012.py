"""FM_012, the break: a job acknowledged on receipt is lost when its worker dies before the work.

Baseline = GUARDED with exactly one lever off (`ack_after_commit`). The receipts worker w1
receives order 1001's job and acknowledges it at once: the queue marks it SUCCEEDED before
any receipt is written. Then w1 dies. The reaper finds nothing to rescue (the job is not
RUNNING), w2 finds nothing to do, and the customer never gets the receipt.
"""

import functools

from failure_modes.FM_012_ack_before_work import scenario
from runtime import effects, invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Scenario, Simulation

BASELINE = GUARDED.without("ack_after_commit")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_job_is_marked_done_before_its_work_and_the_work_never_happens():
    result = scenario.run(BASELINE)

    [lie] = by_inv(result, "INV_004")
    assert lie.message == "job 1 is SUCCEEDED but no effect of it was ever applied"
    assert lie.evidence.jobs == (1,)
    assert lie.evidence.executions == (1,)  # w1's attempt, the only one there ever was
    [acked] = [result.events[seq - 1] for seq in lie.evidence.events]
    assert (acked.type, acked.worker) == ("job.succeeded", "w1")
    assert acked.detail["job_state"] == ["RUNNING", "SUCCEEDED"]
    assert acked.detail["on_receipt"] is True
    # The ack came first, in one transaction with every move of the execution; the
    # crash came after it, and no receipt was ever written.
    assert [(e.type, e.worker) for e in result.events[: acked.seq + 1]] == [
        ("job.submitted", None),
        ("job.leased", "w1"),
        ("execution.started", "w1"),
        ("execution.committed", "w1"),
        ("job.succeeded", "w1"),
        ("fault.crash", "w1"),
    ]
    assert effects.applied(result.store) == []


def test_nothing_will_ever_run_it_again():
    """The lie is permanent. The reaper swept after w1's lease expired and rescued nothing:
    a SUCCEEDED job holds no lease to expire. w2 never leased anything. Checked afresh on
    the final database, the job is still SUCCEEDED with no receipt."""
    result = scenario.run(BASELINE)

    [swept] = [e for e in result.events if e.type == "reaper.swept"]
    assert swept.detail["rescued"] == []
    assert [e for e in result.events if e.worker == "w2"] == []
    [lost] = invariants.check(result.store, final=True)
    assert lost.message == "job 1 is SUCCEEDED but no effect of it was ever applied"


def test_the_queue_itself_looks_healthy():
    """The symptom is quiet: the job SUCCEEDED, no attempt failed, nothing is dead or
    waiting. Only the invariant, which looks for the receipt, sees it."""
    result = scenario.run(BASELINE)

    types = [e.type for e in result.events]
    assert not {"job.dead", "job.retry_scheduled", "lease.expired", "lease.lost"} & set(types)
    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = 1")
    assert (job["state"], job["attempts"], job["last_error"]) == ("SUCCEEDED", 1, None)
    assert result.violated() == ["INV_004"]


def test_without_a_crash_the_queue_still_lied_for_one_step():
    """No crash: w1 acks on receipt and writes the receipt a step later. The database ends
    consistent, yet INV_004 is reported, because it is checked after every step and for
    one step the queue said done while nothing was done. That window is the bug; the crash
    only makes it last forever."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.receipt(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1",),
            policies=BASELINE,
        ),
    )
    assert sim.step("w1", until="started") == "started"
    assert [v.inv for v in sim.violations] == ["INV_004"]  # acked, and no receipt yet
    sim.drain("w1")
    result = sim.finish()

    assert result.events[-1].type == "effect.applied"  # the receipt, after the ack
    assert result.violated() == ["INV_004"]
    assert invariants.check(result.store, final=True) == []  # the end state hides it


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_on_the_first_seed():
    """Every job is acked before its work, so every explored run reports INV_004. Some
    also report INV_007: the work after the ack is not fenced, so a worker paused past
    its lease (or overtaken by a clock jump) writes the receipt after its lease expired."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_004" in summary.failing, summary.failing


def test_exploration_also_finds_receipts_lost_for_good():
    """Not only a crash loses the work: any failure after the ack does. Among the first
    seeds, some end with a SUCCEEDED job and no receipt on the final database (a crash
    after `started`, or the receipt's transaction failing), with no crash scripted."""
    lost = [
        seed
        for seed in range(10)
        if invariants.check(scenario.run(BASELINE, seed).store, final=True, only=["INV_004"])
    ]
    assert lost, "no explored run lost a receipt for good"


def test_the_failure_shrinks_to_the_plainest_schedule():
    """Shrunk, the first failure needs no fault at all: one receipt, one worker, two steps
    (`leased`, then `started`, which acks), and not one decision that is not the plainest.
    The break is the design, not bad luck."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_004")
    assert shrunk.steps == 2, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_004")
    assert [c for c in result.decisions() if c.value] == []
    assert [(e.type, e.worker) for e in result.events][-1] == ("job.succeeded", "w1")
    assert [v.message for v in result.violations] == [
        "job 1 is SUCCEEDED but no effect of it was ever applied"
    ]
