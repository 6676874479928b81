"""FM_014, the break: a rebuild of a derived view adds to it instead of replacing it.

Baseline = GUARDED with exactly one lever off (`replace_derived`). Three orders are recorded
while the sync target is down, and the operator rebuilds the failure views after each batch
of failures. A rebuild computes the right rows from the log, then writes them as an upsert:
a cluster already stored gets the fresh count *added* to the one it holds, and a severity
already stored keeps its old reason. The log holds 6 failures; the table says 9, then 15.
Every job succeeds, nothing raises, and each rebuild logs itself as a rebuild. Only INV_011,
which recomputes the view from the events the rebuild covered, sees that it is wrong.
"""

import functools
import json

import pytest

from failure_modes.FM_014_derived_data_doubled import scenario
from runtime import invariants
from runtime.cli import main
from runtime.explore import explore
from runtime.observe import clusters, severity
from runtime.observe.clusters import Cluster
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("replace_derived")
BUILD = functools.partial(scenario.scenario, BASELINE)
WINDOW = "type=order.placed, window_start=0.0, window_end=600.0"
FAILED_SYNCS = [19, 28, 37, 43, 47, 51]
"""The seqs of the six failed sync attempts (`job.retry_scheduled`) in the scripted run."""


def reports(result: RunResult, table: str):
    """The INV_011 reports about `table`, in the order of the rebuilds they judge."""
    found = [v for v in result.violations if v.inv == "INV_011" and v.message.startswith(table)]
    return sorted(found, key=lambda v: v.evidence.events[-1])


def cluster_ratings(rows):
    return [rating for rating in rows if rating.subject == "cluster"]


def test_the_second_rebuild_stores_nine_failures_for_six():
    """By the second rebuild the log holds six failed syncs, and the rebuild computed six.
    It stored nine: its six added onto the three the first rebuild had stored. INV_011
    recomputes the clusters from the events up to the one the rebuild says it covered
    (`upto_seq` 51) and compares: the stored row is not one the log gives."""
    result = scenario.run(BASELINE)

    doubled, _ = reports(result, clusters.TABLE)
    assert doubled.message == (
        "failure_clusters holds 1 rows, but the log up to event 51 gives 1: 1 stored that it"
        " does not give, 1 it gives that are not stored"
        f" (first stored: {WINDOW}, failures=9, first_seq=19, last_seq=51)"
        f" (first given: {WINDOW}, failures=6, first_seq=19, last_seq=51)"
    )
    # The evidence: the six failures the row counts (and their sync jobs), then the rebuild.
    assert doubled.evidence.events == (*FAILED_SYNCS, 52)
    assert (doubled.evidence.jobs, doubled.evidence.executions) == ((2, 4, 6), ())
    rebuilt = result.events[52 - 1]
    assert rebuilt.type == "derived.rebuilt"
    assert rebuilt.detail == {"table": "failure_clusters", "upto_seq": 51, "rows": 1}
    # What the rebuild covered: six failed syncs, the three first attempts and their retries.
    failed = [e.seq for e in result.events if e.type == "job.retry_scheduled"]
    assert failed == FAILED_SYNCS
    assert clusters.compute(result.store, 51) == [
        Cluster("order.placed", 0.0, 600.0, 6, first_seq=19, last_seq=51)
    ]


def test_every_rebuild_counts_again_what_the_last_one_counted(rebuilds):
    """The first rebuild writes into an empty table, so an upsert and a replace agree: 3.
    From then on each rebuild adds the whole fresh count to the stored one: 3 + 6 = 9,
    then 9 + 6 = 15, though nothing failed between the second rebuild and the third. The
    error grows with every rebuild, and a rebuild is what an operator runs to fix a view."""
    result = scenario.run(BASELINE)

    assert rebuilds == [([3], [3]), ([9], [6]), ([15], [6])]
    _, again = reports(result, clusters.TABLE)
    assert again.message == (
        "failure_clusters holds 1 rows, but the log up to event 71 gives 1: 1 stored that it"
        " does not give, 1 it gives that are not stored"
        f" (first stored: {WINDOW}, failures=15, first_seq=19, last_seq=51)"
        f" (first given: {WINDOW}, failures=6, first_seq=19, last_seq=51)"
    )
    assert again.evidence.events == (*FAILED_SYNCS, 72)
    between = [e.type for e in result.events if 52 < e.seq < 72]
    assert "job.retry_scheduled" not in between  # the third rebuild had nothing new to count
    assert between.count("job.succeeded") == 3  # only the three syncs, going through


def test_the_cluster_severity_keeps_the_reason_of_the_first_rebuild():
    """Severities are upserted with ON CONFLICT DO NOTHING: a rating already stored is kept.
    A failure's own rating never changes, so those rows stay right; the cluster's rating
    does change, and its reason stays "3 failures" while the log holds 6. Whoever reads the
    severity view sees a cluster half its size, next to a cluster count far above it."""
    result = scenario.run(BASELINE)

    stale, again = reports(result, severity.TABLE)
    assert stale.message == (
        "severities holds 7 rows, but the log up to event 52 gives 7: 1 stored that it does"
        " not give, 1 it gives that are not stored"
        " (first stored: subject=cluster, ref=order.placed@0.000, level=HIGH,"
        " reason=3 failures of order.placed between 0.000 and 600.000)"
        " (first given: subject=cluster, ref=order.placed@0.000, level=HIGH,"
        " reason=6 failures of order.placed between 0.000 and 600.000)"
    )
    assert stale.evidence.events == (*FAILED_SYNCS, 53)
    assert again.evidence.events == (*FAILED_SYNCS, 73)
    assert result.events[53 - 1].detail == {"table": "severities", "upto_seq": 52, "rows": 7}
    stored, fresh = severity.stored(result.store), severity.compute(result.store)
    [kept] = cluster_ratings(stored)
    assert kept.reason == "3 failures of order.placed between 0.000 and 600.000"
    [given] = cluster_ratings(fresh)
    assert given.reason == "6 failures of order.placed between 0.000 and 600.000"
    events = [r for r in stored if r.subject == "event"]
    assert events == [r for r in fresh if r.subject == "event"]  # the six failures: right
    assert [int(r.ref) for r in events] == FAILED_SYNCS


def test_nothing_fails_and_only_the_views_are_wrong():
    """The system works: every projection and every sync succeeded (the syncs on their
    third attempt, once the target was back), nothing went DEAD, and each rebuild committed
    and logged how many rows it wrote. The first rebuild agreed with the log. No invariant
    but INV_011 is broken, and no rebuild replaced anything."""
    result = scenario.run(BASELINE)

    states = result.store.tuples("SELECT kind, state, attempts FROM jobs ORDER BY id")
    assert [tuple(row) for row in states] == [
        ("intent.project", "SUCCEEDED", 1),
        ("intent.sync", "SUCCEEDED", 3),
    ] * 3
    assert "job.dead" not in {e.type for e in result.events}
    assert result.violated() == ["INV_011"]
    judged = sorted(v.evidence.events[-1] for v in result.violations)
    assert judged == [52, 53, 72, 73]  # the first rebuild (events 38, 39) holds
    assert result.marks["derived.replaced"] == 0


def test_the_doubled_view_stays_in_the_final_database():
    """Nothing repairs it later: the check of the database alone reports both views, as of
    their last rebuilds, so `fmlab check --db lab.db` finds a doubled view in a real
    database too."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    last = [reports(result, clusters.TABLE)[-1], reports(result, severity.TABLE)[-1]]
    assert [str(v) for v in final] == [str(v) for v in last]


def test_the_cli_shows_the_doubled_count_and_check_catches_it(capsys, tmp_path):
    """An operator's view of the same database: `fmlab clusters` prints what is stored, 15
    failures in the window, and `fmlab check` exits 1 naming INV_011."""
    db = str(tmp_path / "lab.db")
    scenario.run(BASELINE).save(db)

    assert main(["clusters", "--db", db, "--format", "json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["type"], shown["window_start"], shown["failures"]) == ("order.placed", 0.0, 15)
    assert main(["check", "--db", db]) == 1
    assert "INV_011: failure_clusters holds 1 rows" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]
    assert first.violated() == ["INV_011"]


def test_exploration_finds_the_doubled_view_on_the_second_seed():
    """Three orders, two workers, a target failing half its calls, and an operator who
    rebuilds whenever failures were logged since the last rebuild. Seed 0 has one failure,
    no cluster, nothing to double; seed 1 has five, and the operator rebuilds a cluster
    three times. Doubling needs two rebuilds that both find a cluster, so it needs at
    least four failures (a third of the seeds)."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert summary.failing == {"INV_011": [1]}, summary.failing


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_one_order_and_two_rebuilds():
    """Shrunk: one order (its projection and its sync), one worker, 22 steps. The sync fails
    on every call, retried at once (a draw of zero is the target failing, with no backoff
    delay); the only decisions that matter are the two turns given to the operator, after
    the fourth failure and after the fifth. The second rebuild stores 4 + 5 = 9 for 5."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_011")
    assert shrunk.steps == 22, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_011")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == ["next: operator", "next: operator"]
    assert not [c for c in result.decisions() if c.label == "random" and c.value]
    failed = [e.seq for e in result.events if e.type == "job.retry_scheduled"]
    rebuilt = [(e.seq, e.detail["upto_seq"]) for e in result.events if e.type == "derived.rebuilt"]
    assert failed == [13, 17, 21, 25, 31]
    assert rebuilt == [(26, 25), (27, 26), (32, 31), (33, 32)]
    doubled, stale = result.violations
    assert f"(first stored: {WINDOW}, failures=9, first_seq=13, last_seq=31)" in doubled.message
    assert f"(first given: {WINDOW}, failures=5, first_seq=13, last_seq=31)" in doubled.message
    assert "reason=4 failures of order.placed" in stale.message
    assert "reason=5 failures of order.placed" in stale.message
