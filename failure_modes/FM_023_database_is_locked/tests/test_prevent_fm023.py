"""FM_023, the fix: every transaction takes the write lock as it begins and waits for it.

Under GUARDED the store begins with `BEGIN IMMEDIATE` and has a 5 s busy timeout: a
transaction that finds another writer holding the lock waits until that writer commits,
then runs. It never holds a read snapshot that another writer can invalidate before it
writes (the deferred upgrade SQLite refuses without waiting), and writers of one file in
one process take turns on a lock of their own. Mark `lock.waited` counts the transactions
that met a held lock and waited.
"""

import functools

import pytest

from failure_modes.FM_023_database_is_locked import scenario
from failure_modes.FM_023_database_is_locked.processes import JOBS, run_workers
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.policies import GUARDED

SEEDS = range(600)
BUILD = functools.partial(scenario.scenario, GUARDED)


def test_the_commit_waits_for_the_lock_and_the_job_is_done_once():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert result.marks["lock.waited"] == 1
    assert "store.refused" not in [e.type for e in result.events]
    [only] = effects.applied(result.store)
    assert (only.execution_id, only.at) == (1, 0.0)  # w1's attempt, with no lease lost


@pytest.mark.parametrize("chunk", range(3))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    seeds = SEEDS[chunk * 200 : (chunk + 1) * 200]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)


@pytest.mark.campaign
def test_real_worker_processes_wait_their_turn_and_lose_nothing(tmp_path):
    outcome = run_workers(tmp_path)

    assert outcome.check_exit == 0, outcome.report
    assert (outcome.store_errors, outcome.refused) == (0, 0)
    assert outcome.states == {"SUCCEEDED": JOBS}
