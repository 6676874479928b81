"""FM_020, the break: the status counts move by each projection's event, written or not.

Baseline = GUARDED with exactly one lever off (`count_on_write`). Every projection job
carries the status move its change made (`moved`: [None, open] for a new ticket, [open,
in_progress] for the move), and the projector adds that move to the status counts whether
or not the version guard let it write the row. That is right only if every event is
counted exactly once. The agent opens ticket 1 and moves it in progress; before either
projection runs, a rebuild replays the write model into the read model and recounts from
the rows: 1 in progress. Then w1 delivers both jobs. Their rows are skipped (the rebuild
already wrote version 2), and their moves are counted anyway, a second time: 2 in progress
for one ticket. The row is right; only the counter is wrong, and nothing will correct it.
"""

import functools
import json

import pytest

from failure_modes import tickets_world
from failure_modes.FM_020_duplicates_counted_twice import scenario
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.faults import FaultMix
from runtime.invariants.evidence import Evidence
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, model, views
from runtime.tickets.projection import view_row
from runtime.tickets.world import AGENT, REBUILDER

BASELINE = GUARDED.without("count_on_write")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
COUNTS = "the status counts say 2 in_progress, but the write model has 1 in_progress"


def no_rebuild(jobs: int, workers: int):
    """The explored world of FM_017: the same tickets, projectors, reader and faults, and
    no rebuilder."""
    return tickets_world.world(BASELINE, jobs, workers, tickets_world.MIX)


def skipped(result: RunResult) -> list[tuple[int, int, int, int]]:
    """(seq, job, version, the row's version) of every projection the version guard skipped."""
    return [
        (e.seq, e.job_id, e.detail["version"], e.detail["view_version"])
        for e in result.events
        if e.type == "ticket.projection_skipped"
    ]


def moved(store, job: int) -> list[str | None]:
    """The status move a projection job carries: what an event counter adds."""
    return json.loads(store.one("SELECT payload FROM jobs WHERE id = ?", (job,))[0])["moved"]


def test_the_replayed_changes_are_counted_twice():
    result = scenario.run(BASELINE)

    assert [(v.inv, v.message, v.evidence) for v in result.violations] == [
        ("INV_012", COUNTS, Evidence((1, 2), (), (3,)))
    ]
    # The evidence is ticket 1's two projection jobs and its latest change (seq 3, the move
    # to in_progress). No `ticket.projected` is named, because there is none: the rebuild
    # wrote the row, and both jobs' writes were skipped.
    assert [e.type for e in result.events if e.type.startswith("ticket.projected")] == []
    assert skipped(result) == [(10, 1, 1, 2), (16, 2, 2, 2)]
    assert result.violated() == ["INV_012"]


def test_the_counts_step_by_step():
    """The rebuild replays ticket 1 at version 2 and recounts: 1 in_progress, right. Job 1
    ([None, open]) is skipped, and counted: 1 open as well. Job 2 ([open, in_progress]) is
    skipped, and counted: 0 open, 2 in_progress. The queue delivered each job exactly once
    (one execution each, nothing absorbed): the second count is not a redelivery, it is
    the replay."""
    sim = Simulation(0, tickets_world.world(BASELINE, 1, 1, QUIET, changes=1, rebuilds=1))
    assert [sim.act(AGENT), sim.act(AGENT)] == ["committed", "committed"]
    rebuild = [sim.act(REBUILDER)]
    while rebuild[-1] != "swapped":
        rebuild.append(sim.act(REBUILDER))
    assert rebuild == ["started", "filled", "filled", "swapped"]
    view = views.get_view(sim.store, 1)
    assert (view.status, view.version) == ("in_progress", 2)
    assert views.status_counts(sim.store) == {"in_progress": 1}

    assert sim.step("w1", until="acked") == "acked"  # job 1
    assert moved(sim.store, 1) == [None, "open"]
    assert views.status_counts(sim.store) == {"in_progress": 1, "open": 1}
    assert sim.step("w1", until="acked") == "acked"  # job 2
    assert moved(sim.store, 2) == ["open", "in_progress"]
    assert views.status_counts(sim.store) == {"in_progress": 2}
    result = sim.finish()

    assert [v.message for v in result.violations] == [COUNTS]
    executions = result.store.tuples("SELECT job_id, count(*) FROM executions GROUP BY job_id")
    assert [tuple(row) for row in executions] == [(1, 1), (2, 1)]
    assert "effect.absorbed" not in [e.type for e in result.events]


def test_the_rows_are_right_only_the_counts_are_wrong():
    """Every row equals the projection of the write model; the list of tickets in progress
    holds one ticket under a count of 2. Nothing failed, nothing is behind: no backlog, no
    error, no dead letter, no stranded change, and the service's reconciliation (`fmlab
    reconcile`), which compares rows, finds none damaged. The final database, checked on
    its own, still fails only the counts, and stays so: no job is left to move them. A
    rebuild's recount mends them (until the next late delivery counts again)."""
    result = scenario.run(BASELINE)
    store = result.store

    ticket = model.get(store, 1)
    stored = store.one("SELECT * FROM ticket_views WHERE id = 1")
    assert tuple(stored) == view_row(ticket.state())
    assert [v.id for v in views.list_views(store, status="in_progress")] == [1]
    assert views.status_counts(store) == {"in_progress": 2}
    stats = lag.projection(store)
    assert (stats.backlog, stats.errors, stats.dead, stats.stranded) == (0, 0, 0, False)
    assert views.reconcile(store, SimClock(60)) == []
    assert [v.message for v in invariants.check(store, final=True)] == [COUNTS]

    views.rebuild(store, SimClock(60))

    assert views.status_counts(store) == {"in_progress": 1}
    assert invariants.check(store, final=True) == []


def test_a_redelivered_job_never_reaches_the_counter():
    """Event counting is safe from the queue's own duplicates. w1 commits ticket 1's
    projection and dies before its ack; the reaper hands the job back and w1 runs it again.
    The retry's commit finds the effect already recorded for the job and absorbs it
    (`effect.absorbed`): the projector, and its counter, never see the second delivery."""
    sim = Simulation(0, tickets_world.world(BASELINE, 1, 1, QUIET, changes=0))
    sim.act(AGENT)
    assert sim.step("w1", until="committed") == "committed"
    sim.crash("w1")
    sim.advance(31)  # past the 30 s lease
    assert sim.reap() == [1]
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    absorbed = [(e.job_id, e.execution_id) for e in result.events if e.type == "effect.absorbed"]
    assert absorbed == [(1, 2)]
    assert views.status_counts(result.store) == {"open": 1}


def test_out_of_order_deliveries_still_net_out():
    """Without a rebuild, every event reaches the counter once, and adding moves commutes:
    whatever order they arrive in, the sum is the final state. w2 lands version 2 first
    ([open, in_progress]: -1 open, +1 in_progress), and for a moment the counts say -1
    open. Then w1's late version 1 is skipped and counted ([None, open]: +1 open), and the
    counts are right. The check judges at quiet, so there is nothing to report."""
    sim = Simulation(0, tickets_world.world(BASELINE, 1, 2, QUIET, changes=1))
    sim.act(AGENT)
    sim.act(AGENT)
    sim.step("w1", until="leased")  # version 1, and w1 is slow
    sim.drain("w2")  # version 2 lands
    assert views.status_counts(sim.store) == {"in_progress": 1, "open": -1}
    sim.drain("w1")  # version 1 arrives late: skipped, counted
    result = sim.finish()

    assert result.violations == []
    assert [s[1:] for s in skipped(result)] == [(1, 1, 2)]
    assert views.status_counts(result.store) == {"in_progress": 1}


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_without_a_rebuild_event_counting_never_breaks():
    """The lesson in numbers. The same explored world with no rebuilder (two tickets, two
    projectors, a reader, every fault site): none of the first 200 seeds breaks INV_012,
    though the version guard skipped late deliveries in them, each counted by its event.
    With one rebuild during the run, 187 of the same 200 seeds break it, from seed 1 on
    (454 of the first 500). A counter is only as idempotent as its input; a replay while
    live delivers every replayed change a second time."""
    jobs, workers = scenario.META.world
    quiet = explore(no_rebuild, range(200), jobs=jobs, workers=workers)
    assert quiet.failing == {}, quiet.failing
    assert quiet.marks["projection.skipped"] > 0

    rebuilt = explore(BUILD, range(200), jobs=jobs, workers=workers)
    assert list(rebuilt.failing) == ["INV_012"]
    assert (len(rebuilt.failing["INV_012"]), rebuilt.failing["INV_012"][0]) == (187, 1)


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_within_the_stated_seeds():
    """Two tickets, two projectors, a reader, one rebuild, every fault site: seed 0 holds,
    seed 1 breaks."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    assert summary.failing == {"INV_012": [1]}, summary.failing


def test_explored_seed_1_counts_two_creations_twice():
    """Seed 1. The rebuild (seqs 13 to 34) copied ticket 1 at version 3 and ticket 2 at
    version 1, and recounted: 1 in progress, 1 open. The guard then skipped four
    deliveries: ticket 1's note (job 3) and the two creations (job 5, ticket 2's version 1;
    job 1, ticket 1's version 1, late), all versions the rebuild had covered, and ticket
    2's note (job 7), merely late. The notes move no status; each creation counted +1 open
    once more. Both tickets end closed, and the counts say 2 closed and 2 open."""
    result = scenario.run(BASELINE, 1)

    [violation] = result.violations
    assert violation.message == (
        "the status counts say 2 closed, 2 open, but the write model has 2 closed"
    )
    assert violation.evidence == Evidence((1, 2, 3, 4, 5, 6, 7, 8), (), (17, 32, 62, 79))
    rebuilds = [
        (e.seq, e.type)
        for e in result.events
        if e.type in ("ticket.rebuild_started", "ticket.views_rebuilt")
    ]
    assert rebuilds == [(13, "ticket.rebuild_started"), (34, "ticket.views_rebuilt")]
    assert skipped(result) == [(39, 3, 3, 3), (48, 5, 1, 1), (70, 1, 1, 3), (99, 7, 3, 4)]
    assert [moved(result.store, job) for job in (3, 5, 1, 7)] == [
        [None, None],
        [None, "open"],
        [None, "open"],
        [None, None],
    ]
    assert views.status_counts(result.store) == {"closed": 2, "open": 2}


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_one_replayed_move():
    """Shrunk to 16 steps (from 81), one ticket and one worker, five decisions: the
    rebuilder four times, the agent once. The agent opens ticket 1; the rebuild starts
    (a shadow table); w1 leases job 1 and starts it; the agent moves the ticket in progress
    (version 2, job 2); the rebuild copies ticket 1 into its shadow at version 2; w1 lands
    version 1 in the live table and counts 1 open; the swap puts version 2 in place and
    recounts: 1 in progress. Job 2 then arrives, is skipped, and moves its [open,
    in_progress] once more: 2 in progress and -1 open. No fault, no reader: one change
    that reached the read model twice, by the replay and by its own job."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=jobs, workers=workers), "INV_012")
    assert (shrunk.steps, shrunk.steps_before) == (16, 81), shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)

    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    label = "next: w1 | agent | reader | rebuilder"
    picks = [(c.label, c.value) for c in result.decisions() if c.value]
    assert picks == [(label, 3), (label, 1), (label, 3), (label, 3), (label, 3)]
    assert [e.type for e in result.events] == [
        "ticket.changed",
        "job.submitted",
        "ticket.rebuild_started",
        "job.leased",
        "execution.started",
        "ticket.changed",
        "job.submitted",
        "effect.applied",
        "ticket.projected",
        "execution.committed",
        "job.succeeded",
        "job.leased",
        "ticket.views_rebuilt",
        "execution.started",
        "effect.applied",
        "ticket.projection_skipped",
        "execution.committed",
        "job.succeeded",
    ]
    assert skipped(result) == [(16, 2, 2, 2)]
    assert [(v.message, v.evidence) for v in result.violations] == [
        (
            "the status counts say 2 in_progress, -1 open, but the write model has 1 in_progress",
            Evidence((1, 2), (), (6, 9)),
        )
    ]
    assert "fault" not in " ".join(e.type for e in result.events)
