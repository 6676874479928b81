"""FM_023, the break: a transaction that does not wait for SQLite's write lock fails.

Baseline = GUARDED with exactly one lever off (`wait_for_write_lock`): the store begins
its transactions DEFERRED and has no busy timeout. w1 leases order 1001, starts and works
out the points; as it comes to commit, another process is in the middle of a commit of its
own and holds the write lock. A store that waited would have the lock a moment later.
This one answers "database is locked" at once: w1's commit is refused, the attempt is
abandoned with its work done, and the job waits out its 30 s lease before w2 does it all
again. The runtime records the refusal (`store.refused`), and INV_013 names it.
"""

import functools

import pytest

from failure_modes.FM_023_database_is_locked import scenario
from failure_modes.FM_023_database_is_locked.processes import JOBS, run_workers
from runtime import effects, invariants, timeline
from runtime.explore import explore
from runtime.policies import GUARDED

BASELINE = GUARDED.without("wait_for_write_lock")
BUILD = functools.partial(scenario.scenario, BASELINE)


def test_the_commit_is_refused_because_another_writer_held_the_lock():
    result = scenario.run(BASELINE)

    [violation] = result.violations
    assert violation.inv == "INV_013"
    assert violation.message.startswith(
        "w1 was refused on job 1 because another writer held the database's lock, and did"
        " not wait for it: :memory:: database is locked"
    )
    assert (violation.evidence.jobs, violation.evidence.executions) == ((1,), (1,))
    [seq] = violation.evidence.events
    refused = result.events[seq - 1]
    assert (refused.type, refused.worker, refused.at) == ("store.refused", "w1", 0.0)
    assert refused.detail["busy"] is True


def test_the_work_is_done_twice_and_the_job_waits_a_whole_lease():
    """Nothing is lost (the refused commit wrote nothing, and the reaper hands the job on),
    but w1's work is thrown away and the order waits 30 s for a second attempt."""
    result = scenario.run(BASELINE)

    executions = result.store.all("SELECT id, worker, status FROM executions ORDER BY id")
    assert [tuple(row) for row in executions] == [(1, "w1", "ABORTED"), (2, "w2", "DONE")]
    [only] = effects.applied(result.store)
    assert (only.execution_id, only.at) == (2, 30.0)
    assert [e.type for e in result.events if e.type.startswith("lease.")] == ["lease.expired"]


def test_the_final_database_shows_it_too():
    result = scenario.run(BASELINE)
    final = invariants.check(result.store, final=True)
    assert [str(v) for v in final] == [str(v) for v in result.violations]


def test_the_same_run_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert timeline.as_json(first.events, first.violations) == timeline.as_json(
        second.events, second.violations
    )


def test_exploration_finds_a_writer_refused_for_a_held_lock():
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert summary.failing == {"INV_013": [1]}, summary.failing


@pytest.mark.campaign
def test_real_worker_processes_fail_their_work_on_a_busy_file(tmp_path):
    """Four processes of two threads on one WAL file, deferred transactions and no busy
    timeout: "database is locked" by the thousand, refusals recorded, INV_013 reported,
    and jobs whose handlers never failed spend their attempts and go DEAD."""
    outcome = run_workers(tmp_path, "wait_for_write_lock")

    assert outcome.check_exit == 1, outcome.report
    assert "VERDICT: violated INV_013" in outcome.report
    assert outcome.store_errors > 0 and outcome.refused > 0
    assert sum(outcome.states.values()) == JOBS  # nothing lost: every job ended
