"""The catalog on PostgreSQL: each failure mode whose world does not lean on SQLite's own
SQL, proven again on the other backend, and shown to be the same run there.

The simulator drives the real runtime over a real store; `runtime.sim.runs_on` hands it a
PostgreSQL schema instead of in-memory SQLite. A fix proven on one engine is not proven on
another (isolation, locking and numbering all differ), so the fix's scripted schedule runs
on both, and the timelines must be the same bytes: ids, seqs, times, decisions. `make gate`
adds the break (the baseline) and an exploration of seeds under GUARDED on each.
"""

import pytest

from failure_modes import catalog
from runtime import timeline
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.sim import RunResult, runs_on

PORTABLE = [fm for fm in catalog.discover() if not fm.meta.sqlite_only]
IDS = [fm.meta.id for fm in PORTABLE]
SEEDS = 12
"""Explored seeds per failure mode on PostgreSQL, where a seed costs about 70 ms, not 1.5."""


def printed(result: RunResult) -> str:
    return timeline.text(result.events, result.violations)


def test_the_queues_failure_modes_all_run_on_postgresql():
    """The intent log's and the tickets service's worlds stay on SQLite, each saying why;
    every failure mode of the queue itself runs on both."""
    assert [f"FM_{n:03d}" for n in (*range(1, 13), 15)] == IDS
    assert all(fm.meta.sqlite_only for fm in catalog.discover() if fm not in PORTABLE)


@pytest.mark.parametrize("fm", PORTABLE, ids=IDS)
def test_the_fix_holds_on_postgresql_in_the_same_timeline(fm, pg_schemas):
    on_sqlite = fm.run(GUARDED)
    with runs_on(pg_schemas.new_store):
        on_postgresql = fm.run(GUARDED)

    assert on_postgresql.violations == []
    assert printed(on_postgresql) == printed(on_sqlite)


@pytest.mark.campaign
@pytest.mark.parametrize("fm", PORTABLE, ids=IDS)
def test_the_break_shows_on_postgresql_in_the_same_timeline(fm, pg_schemas):
    on_sqlite = fm.run(fm.baseline)
    with runs_on(pg_schemas.new_store):
        on_postgresql = fm.run(fm.baseline)

    assert set(fm.meta.invariants) <= set(on_postgresql.violated())
    assert printed(on_postgresql) == printed(on_sqlite)


@pytest.mark.campaign
@pytest.mark.parametrize("fm", PORTABLE, ids=IDS)
def test_explored_runs_hold_on_postgresql_as_on_sqlite(fm, pg_schemas):
    """The first seeds of the prevent test's exploration: no violation on PostgreSQL, and
    the same steps and marks seed for seed as on SQLite."""
    jobs, workers = fm.meta.world
    seeds = range(SEEDS // 4 if jobs > 5 else SEEDS)  # a retry storm's crowd costs more
    on_sqlite = explore(fm.build("guarded"), seeds, jobs=jobs, workers=workers)
    with runs_on(pg_schemas.new_store):
        on_postgresql = explore(fm.build("guarded"), seeds, jobs=jobs, workers=workers)

    assert on_postgresql.failing == {}
    assert (on_postgresql.steps, on_postgresql.marks) == (on_sqlite.steps, on_sqlite.marks)
