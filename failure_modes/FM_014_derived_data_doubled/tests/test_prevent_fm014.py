"""FM_014, the fix: a rebuild replaces the derived view whole, in one transaction.

Under GUARDED `derived.replace_all` reads the log's latest seq, computes the view from the
events up to it, deletes the table, inserts the fresh rows and logs `derived.rebuilt` with
the seq it covered, all in one transaction. Nothing of the last rebuild survives into the
next, so a rebuild is idempotent: run it once, twice, or on an empty table, and the rows
are the ones the log gives. That also makes the view disposable, which is the recovery: a
view that went wrong is repaired by rebuilding it, never by editing it.
"""

import functools

import pytest

from failure_modes.FM_014_derived_data_doubled import scenario
from failure_modes.proof import explored_clean
from runtime import invariants
from runtime.faults import NO_MIX
from runtime.intents import system
from runtime.observe import clusters, severity
from runtime.observe.clusters import Cluster
from runtime.policies import GUARDED
from runtime.sim import RunResult, Simulation
from runtime.store import Store

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
SIX = Cluster("order.placed", 0.0, 600.0, 6, first_seq=19, last_seq=51)
"""The one cluster the scripted run's log gives: six failed syncs in the first window."""


def views(store: Store):
    """Both derived views as stored: the clusters and the severities."""
    return clusters.stored(store), severity.stored(store)


def rebuild_both(store: Store, at: float) -> None:
    """What the operator (or `fmlab clusters --rebuild`, `fmlab severity --rebuild`) does."""
    clusters.rebuild(store, at, GUARDED)
    severity.rebuild(store, at, GUARDED)


def quiet_at(result: RunResult) -> float:
    return result.events[-1].at


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert clusters.stored(result.store) == [SIX]
    [rated] = [r for r in severity.stored(result.store) if r.subject == "cluster"]
    assert (rated.level, rated.reason) == (
        "HIGH",
        "6 failures of order.placed between 0.000 and 600.000",
    )


def test_the_view_equals_the_log_after_every_rebuild(rebuilds):
    """3 after the first rebuild, 6 after the second, 6 after the third: each rebuild
    stores exactly what it computed. The second and third found a cluster stored and
    replaced it (mark `derived.replaced`); the first found the table empty. Each rebuild
    logged the last event it covered, the one just before its own `derived.rebuilt`, so a
    check can compute the same rows from the same events later."""
    result = scenario.run(GUARDED)

    assert rebuilds == [([3], [3]), ([6], [6]), ([6], [6])]
    assert result.marks["derived.replaced"] == 2
    rebuilt = [e for e in result.events if e.type == "derived.rebuilt"]
    assert [(e.seq, e.detail["table"], e.detail["upto_seq"]) for e in rebuilt] == [
        (38, clusters.TABLE, 37),
        (39, severity.TABLE, 38),
        (52, clusters.TABLE, 51),
        (53, severity.TABLE, 52),
        (72, clusters.TABLE, 71),
        (73, severity.TABLE, 72),
    ]


def test_a_view_the_log_has_moved_past_is_stale_not_wrong():
    """Between rebuilds the log moves on and the view does not: after the retries fail, the
    log holds 6 failures and the view still 3. That is allowed. INV_011 judges a view
    against the events its rebuild covered (up to event 37: three failures, one cluster of
    3), so a view that is behind is reported only if it is wrong about what it covered.
    The next rebuild catches up, replacing the 3 with 6."""
    world = scenario.world(GUARDED, scenario.ORDERS, 1, scenario.DOWN_FOR_A_MINUTE, NO_MIX)
    sim = Simulation(0, world)
    sim.drain("w1")  # three syncs refused
    sim.rebuild()  # the view: 3
    sim.advance(system.POLICIES.retry_schedule_s[0])
    sim.drain("w1")  # three more refused: the log says 6

    assert [c.failures for c in clusters.stored(sim.store)] == [3]
    assert [c.failures for c in clusters.compute(sim.store)] == [6]
    # (final: check every view now, not only one just rebuilt; the syncs are still due)
    assert invariants.check(sim.store, final=True, only=["INV_011"]) == []
    sim.rebuild()
    assert clusters.stored(sim.store) == [SIX]
    assert sim.violations == []  # what the checks after every step found: nothing


def test_rebuilding_twice_in_a_row_changes_nothing():
    """Idempotent recomputation: two more rebuilds of both views, one after the other,
    leave the rows exactly as they were. They add only their own `derived.rebuilt` events
    to the log, and every invariant still holds."""
    result = scenario.run(GUARDED)
    before = views(result.store)

    rebuild_both(result.store, quiet_at(result))
    rebuild_both(result.store, quiet_at(result))

    assert views(result.store) == before
    added = [e.type for e in result.events[73:]]
    assert added == ["derived.rebuilt"] * 4
    assert invariants.check(result.store, final=True) == []


def test_wiped_views_rebuild_to_the_same_rows():
    """Derived data is disposable: delete both tables and rebuild, and the rows are the
    ones that were there. A view that can be thrown away and computed again never needs a
    backup, or a repair by hand."""
    result = scenario.run(GUARDED)
    before = views(result.store)

    with result.store.transaction() as tx:
        tx.execute(f"DELETE FROM {clusters.TABLE}")
        tx.execute(f"DELETE FROM {severity.TABLE}")
    assert views(result.store) == ([], [])
    rebuild_both(result.store, quiet_at(result))

    assert views(result.store) == before
    assert invariants.check(result.store, final=True) == []


def test_one_guarded_rebuild_repairs_a_doubled_view():
    """Recovery of a system already hit: the baseline's database holds 15 failures where
    the log gives 6, and a stale severity reason. Rebuild both views with the lever on
    (`fmlab clusters --rebuild`, `fmlab severity --rebuild` do): the rows become the fresh
    computation and INV_011 holds again, because it judges each view by its latest
    rebuild. The wrong rebuilds stay in the log as what happened; only the view changes."""
    result = scenario.run(GUARDED.without("replace_derived"))
    assert [c.failures for c in clusters.stored(result.store)] == [15]

    rebuild_both(result.store, quiet_at(result))

    assert clusters.stored(result.store) == [SIX]
    assert severity.stored(result.store) == severity.compute(result.store)
    assert invariants.check(result.store, final=True) == []
    tables = [e.detail["table"] for e in result.events if e.type == "derived.rebuilt"]
    assert len(tables) == 8  # the operator's six, and the repair's two


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds of three orders synced to a target that fails half its calls, with an
    operator rebuilding the views whenever failures were logged since its last rebuild: no
    violation, and rebuilds replaced stored rows (mark `derived.replaced`), so the pass is
    not vacuous. About a third of these seeds double the view in the baseline."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["retry.scheduled"] > 0  # the failures the views count
