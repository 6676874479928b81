"""FM_007, the break: without one transaction per operation, a crash tears a state change.

Baseline = GUARDED with exactly one lever off (`one_transaction`). The loyalty worker's
completion becomes four transactions: effect record, commit, the ack's moves, the ack's
event. w1 records order 1001's points and dies before its commit: the reaper aborts the
attempt, and the ledger holds an effect no committed execution owns (INV_002). w2's retry
absorbs the repeat, commits, marks the job SUCCEEDED and dies before logging it: the rows
say SUCCEEDED, the log says RUNNING, and nothing will ever write the missing event
(INV_003). Nothing is duplicated and nothing looks stuck; the history is simply wrong.
"""

import functools

from failure_modes.FM_007_torn_write import scenario
from runtime import effects, invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import Case, replay, shrink
from runtime.sim import RunResult, Scenario, Simulation

BASELINE = GUARDED.without("one_transaction")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_crashed_attempt_left_an_effect_nobody_committed():
    result = scenario.run(BASELINE)

    [orphan] = by_inv(result, "INV_002")
    assert orphan.message == (
        "execution 1 applied job 1's effect ledger/order-1001 but ended ABORTED without "
        "committing it"
    )
    assert (orphan.evidence.jobs, orphan.evidence.executions) == ((1,), (1,))
    [applied] = [result.events[seq - 1] for seq in orphan.evidence.events]
    assert (applied.type, applied.worker, applied.detail["key"]) == (
        "effect.applied",
        "w1",
        "order-1001",
    )
    # The effect record committed on its own; the commit that should have carried it never ran.
    types = [(e.type, e.execution_id) for e in result.events]
    assert ("execution.committed", 1) not in types
    assert result.store.one("SELECT status FROM executions WHERE id = 1")["status"] == "ABORTED"


def test_the_commit_boundary_still_absorbs_the_repeat():
    """Not FM_001: the effect is keyed by job, so w2's commit finds w1's entry and absorbs
    it. One ledger entry, no duplicate. The damage is that its record is torn, not doubled."""
    result = scenario.run(BASELINE)

    [only] = effects.applied(result.store)
    assert only.execution_id == 1
    [absorbed] = [e for e in result.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.detail["first_execution"]) == ("w2", 1)
    assert "INV_001" not in result.violated()


def test_the_rows_say_succeeded_and_the_log_says_running():
    result = scenario.run(BASELINE)

    job, execution = by_inv(result, "INV_003")
    assert job.message == (
        "job 1 is SUCCEEDED but its logged history ends at RUNNING: a transition was not logged"
    )
    assert execution.message == (
        "execution 2 is DONE but its logged history ends at COMMITTED: a transition was not logged"
    )
    assert (job.evidence.jobs, job.evidence.executions) == ((1,), (1, 2))
    assert (execution.evidence.jobs, execution.evidence.executions) == ((1,), (2,))
    # Each seq points at the last move the log knows: w2's lease and w2's commit.
    [leased] = [result.events[seq - 1] for seq in job.evidence.events]
    [committed] = [result.events[seq - 1] for seq in execution.evidence.events]
    assert (leased.type, leased.worker, leased.detail["job_state"]) == (
        "job.leased",
        "w2",
        ["PENDING", "RUNNING"],
    )
    assert (committed.type, committed.worker) == ("execution.committed", "w2")

    # The rows moved; the log did not.
    assert result.store.one("SELECT state FROM jobs WHERE id = 1")["state"] == "SUCCEEDED"
    assert result.store.one("SELECT status FROM executions WHERE id = 2")["status"] == "DONE"
    job_moves = [e.detail["job_state"] for e in result.events if "job_state" in e.detail]
    assert job_moves[-1] == ["PENDING", "RUNNING"]
    assert "job.succeeded" not in [e.type for e in result.events]


def test_nothing_will_ever_write_the_missing_event():
    """The crash made the tear permanent: the job is not RUNNING, so the reaper has nothing
    to rescue and no worker will touch it again. The final database still fails INV_003,
    and a reader of the log (audit, replay, a downstream consumer) never learns the order
    was done."""
    result = scenario.run(BASELINE)

    [crash_w2] = [e for e in result.events if e.type == "fault.crash" and e.worker == "w2"]
    assert crash_w2.detail["after"] == "marked_done"
    assert result.events[-1].type == "reaper.swept"
    assert result.events[-1].detail["rescued"] == []
    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [v.message for v in by_inv(result, "INV_003")]
    assert result.violated() == ["INV_002", "INV_003"]


def test_the_orphaned_effect_is_reported_between_the_abort_and_the_retry():
    """INV_002 is reported once the reaper has aborted execution 1 with its ledger entry
    still there. Once w2's commit absorbs that entry, a committed execution vouches for it, so the
    final database no longer shows it: the per-step check is what caught it. Had no retry
    committed (the job out of attempts, the handler changed), the orphan would stay."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=BASELINE,
        ),
    )
    sim.step("w1", until="effect_recorded")
    sim.crash("w1")
    assert sim.violations == []  # execution 1 is still open: it may yet commit
    sim.advance(BASELINE.lease_s)
    sim.reap()  # a scripted sweep is not a step: the next step's check sees it
    assert invariants.check(sim.store, only=["INV_002"]) != []
    assert sim.step("w2") == "leased"
    assert [v.inv for v in sim.violations] == ["INV_002"]
    sim.step("w2", until="committed")
    assert invariants.check(sim.store, only=["INV_002"]) == []  # absorbed by a commit


def test_without_a_crash_the_log_still_lagged_for_one_step():
    """No fault at all: w1 runs its attempt to the end, and the database ends consistent.
    INV_003 is reported anyway, because the checker runs after every step, and between the
    ack's moves and its event any reader saw a SUCCEEDED job with no `job.succeeded`. That
    window is the bug; a crash (or a failed transaction) inside it makes it last forever."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001),),
            handlers=scenario.HANDLERS,
            workers=("w1",),
            policies=BASELINE,
        ),
    )
    assert sim.step("w1", until="marked_done") == "marked_done"
    assert [v.inv for v in sim.violations] == ["INV_003", "INV_003"]
    sim.drain("w1")
    result = sim.finish()

    assert result.events[-1].type == "job.succeeded"  # the event, one transaction late
    assert result.violated() == ["INV_003"]
    assert invariants.check(result.store, final=True) == []  # the end state hides it


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_on_the_first_seed():
    """Every torn completion has its window, so every explored run that finishes a job
    reports INV_003. Some also report INV_007: the ack's event is written unfenced, after
    the fenced moves, so a clock jump between the two writes it past the lease."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_003" in summary.failing, summary.failing


def test_exploration_also_finds_tears_that_last():
    """No crash is needed to make a tear permanent: the simulator's faults land between the
    torn transactions too. Among the first seeds, a failed transaction ("database is
    locked") right after `marked_done` loses the event for good, and one right after
    `effect_recorded` strands a ledger entry whose commit never ran."""
    lasting = [
        seed
        for seed in range(10)
        if invariants.check(scenario.run(BASELINE, seed).store, final=True, only=["INV_003"])
    ]
    assert lasting, "no explored run left a move unlogged for good"
    orphaned = [seed for seed in range(10) if "INV_002" in scenario.run(BASELINE, seed).violated()]
    assert orphaned, "no explored run left an effect without its commit"


def test_the_failure_shrinks_to_the_plainest_schedule():
    """Shrunk, the first failure needs no fault: one order, one worker, six steps (leased,
    started, effect_applied, effect_recorded, committed, marked_done), no decision but the
    plainest. The torn window is the design, not bad luck."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_003")
    assert shrunk.steps == 6, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_003")
    assert [c for c in result.decisions() if c.value] == []
    assert result.events[-1].type == "execution.committed"  # and then the rows moved, unlogged
    assert [v.message.split(":")[0] for v in result.violations] == [
        "job 1 is SUCCEEDED but its logged history ends at RUNNING",
        "execution 1 is DONE but its logged history ends at COMMITTED",
    ]


def test_the_orphaned_effect_shrinks_to_one_failed_commit():
    """The first run that reports INV_002, shrunk: one order, one worker; w1 records the
    points, its next transaction (the commit) fails, and the reaper aborts the attempt. The
    only decisions that matter: the `db_error` site on, and firing after `effect_recorded`."""
    [seed] = [s for s in range(10) if "INV_002" in scenario.run(BASELINE, s).violated()][:1]
    run = scenario.run(BASELINE, seed)
    shrunk = shrink(BUILD, Case(3, 2, tuple(run.tape), tuple(run.labels)), "INV_002")
    assert shrunk.steps <= 8, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_002")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == ["switch on db_error: yes", "fault after w1 effect_recorded: db_error"]
    [orphan] = result.violations
    assert orphan.message.startswith("execution 1 applied job 1's effect ledger/order-1001")
