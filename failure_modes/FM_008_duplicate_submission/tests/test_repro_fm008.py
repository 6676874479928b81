"""FM_008, the break: without submit idempotency a client's retry becomes a second job.

Baseline = GUARDED with exactly one lever off (`submit_idempotency`). The checkout submits
order 1001 with key `order-1001`, never hears back, and submits again with the same key.
The queue logs the key but does not look it up, so it accepts a second job. Nothing crashes
and nothing is retried: w1 runs job 1, then job 2, each exactly once, and each awards the
points. The ledger holds two entries for one order, written by two different jobs.
"""

import functools
from collections import defaultdict

from failure_modes.FM_008_duplicate_submission import scenario
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("submit_idempotency")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_two_jobs_for_one_order_both_award_the_points():
    result = scenario.run(BASELINE)

    [duplicate] = by_inv(result, "INV_001")
    assert duplicate.evidence.jobs == (1, 2)  # the first submit and the client's retry
    assert duplicate.evidence.executions == (1, 2)  # one execution each: nothing was retried
    applied = [result.events[seq - 1] for seq in duplicate.evidence.events]
    assert [(e.type, e.job_id, e.execution_id, e.detail["key"]) for e in applied] == [
        ("effect.applied", 1, 1, "order-1001"),
        ("effect.applied", 2, 2, "order-1001"),
    ]
    assert "ledger/order-1001 was applied 2 times, by executions 1 and 2 of jobs 1 and 2" in (
        duplicate.message
    )


def test_the_key_travelled_with_both_submits_and_was_only_logged():
    """The client did its part: both submits carry `order-1001`. Without the lever the queue
    writes the key into the log and nowhere it would look it up."""
    result = scenario.run(BASELINE)

    submitted = [e for e in result.events if e.type == "job.submitted"]
    assert [(e.job_id, e.detail["key"]) for e in submitted] == [
        (1, "order-1001"),
        (2, "order-1001"),
    ]
    assert "job.submit_absorbed" not in [e.type for e in result.events]
    stored = [row["idempotency_key"] for row in result.store.all("SELECT * FROM jobs")]
    assert stored == [None, None]


def test_the_event_log_is_enough_to_find_the_duplicates():
    """Recovery starts here: group the `job.submitted` events by key, and any key with more
    than one job names the duplicates (then: reverse the later job's entry)."""
    result = scenario.run(BASELINE)

    jobs_by_key = defaultdict(list)
    for e in result.events:
        if e.type == "job.submitted" and e.detail["key"] is not None:
            jobs_by_key[e.detail["key"]].append(e.job_id)
    assert {key: jobs for key, jobs in jobs_by_key.items() if len(jobs) > 1} == {
        "order-1001": [1, 2]
    }


def test_the_queue_itself_looks_healthy():
    """The symptom is quiet: two jobs, both SUCCEEDED, each run once, nothing failed,
    nothing crashed. To the queue they are two orders; only INV_001 sees one order twice."""
    result = scenario.run(BASELINE)

    types = [e.type for e in result.events]
    assert types.count("job.succeeded") == 2 and types.count("job.leased") == 2
    assert not [t for t in types if t.startswith(("fault.", "lease.", "job.retry", "job.dead"))]
    assert result.violated() == ["INV_001"]


def test_the_same_run_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_duplicate_job_without_being_told_to_submit_twice():
    """Seeded runs switch the `duplicate_delivery` site on at random and fire it at random
    submits. Within META.found_within seeds one of them delivers a submit twice and the
    duplicate is reported."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_001" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: one order, one worker, no crash. The decisions that
    matter are the duplicate-delivery site switched on and firing at the only submit; the
    rest is w1 running two jobs to the end, one after the other."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_001")
    assert shrunk.steps <= 9, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_001")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == [
        "switch on duplicate_delivery: yes",
        "fault at submit of job 1: duplicate_delivery",
    ], mattered
    [duplicate] = by_inv(result, "INV_001")
    assert duplicate.evidence.jobs == (1, 2)
