"""FM_001, the break: without the commit boundary a retry applies the effect twice.

Baseline = GUARDED with exactly one lever off (`commit_boundary`). The loyalty worker w1
writes order 1001's points to the ledger, dies before it commits, the reaper rescues the
expired lease and w2 runs the job again: the ledger now holds two entries for one order.
"""

import functools

from failure_modes.FM_001_duplicate_retry import scenario
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("commit_boundary")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_retry_applies_the_effect_a_second_time():
    result = scenario.run(BASELINE)

    [duplicate] = by_inv(result, "INV_001")
    assert duplicate.evidence.jobs == (1,)
    assert duplicate.evidence.executions == (1, 2)  # w1's crashed attempt and w2's retry
    applied = [result.events[seq - 1] for seq in duplicate.evidence.events]
    assert [(e.type, e.worker, e.detail["key"]) for e in applied] == [
        ("effect.applied", "w1", "order-1001"),
        ("effect.applied", "w2", "order-1001"),
    ]


def test_the_crashed_attempt_left_an_effect_nobody_committed():
    result = scenario.run(BASELINE)

    [orphan] = by_inv(result, "INV_002")
    assert orphan.evidence.executions == (1,)
    assert "ended ABORTED without committing" in orphan.message


def test_the_queue_itself_looks_healthy():
    """The symptom is quiet: the job SUCCEEDED and nothing failed. Only the invariant sees it."""
    result = scenario.run(BASELINE)

    types = [e.type for e in result.events]
    assert types[-1] == "job.succeeded"
    assert "job.dead" not in types and "job.retry_scheduled" not in types
    assert result.violated() == ["INV_001", "INV_002"]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_duplicate_without_being_told_where_to_crash():
    """Seeded runs crash, pause and lose acks at random. Within META.found_within seeds one
    of them crashes between the effect and the commit, and the duplicate is reported."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_001" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: one order; w1 applies the points, then something
    keeps it from committing (a crash, a failed transaction, a pause past its lease); the
    reaper rescues the lease and the retry applies the points again. The decisions that
    matter: one fault site switched on, and that fault firing right after w1's
    `effect_applied` (and, at most, how long a step took)."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_001")
    assert shrunk.steps <= 10, shrunk
    result = replay(BUILD, shrunk.case, stop_on="INV_001")
    mattered = [describe(c) for c in result.decisions() if c.value]
    [fired] = [d for d in mattered if d.startswith("fault after ")]
    assert fired.startswith("fault after w1 effect_applied: "), mattered
    site = fired.rsplit(": ", 1)[1]
    assert f"switch on {site}: yes" in mattered
    assert len(mattered) <= 4, mattered
    assert shrunk.case.jobs == 1
    assert result.violated()[0] == "INV_001"
