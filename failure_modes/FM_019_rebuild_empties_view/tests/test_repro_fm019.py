"""FM_019, the break: the rebuild empties the live read model, then fills it again.

Baseline = GUARDED with exactly one lever off (`shadow_swap`). The read model is derived and
disposable, so the rebuild treats it as such: it deletes every row (`emptied`), projects the
write model back into the same table a ticket at a time (`filled`), and counts the statuses
again (`swapped`). Each step is a transaction of its own, and the service goes on answering
reads between them. The reader read ticket 1 at version 1 a moment before the rebuild began;
reading it again after the first step, it finds no row. INV_012 names the two reads.
"""

import functools

from failure_modes import tickets_world
from failure_modes.FM_019_rebuild_empties_view import scenario
from runtime import invariants
from runtime.explore import explore
from runtime.invariants.evidence import Evidence
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import Simulation
from runtime.tickets import lag, views
from runtime.tickets.world import AGENT, READER, REBUILDER

BASELINE = GUARDED.without("shadow_swap")
BUILD = functools.partial(scenario.scenario, BASELINE)
WENT_BACK = "ticket 1 was read at version 1, then at no row: the read model went back"
MISSING = "ticket 1 is in the write model at version 1 but not in the read model"


def rebuilding_to_the_end(sim: Simulation) -> list[str]:
    """The rebuilder's remaining steps, up to and including its swap."""
    steps = [sim.act(REBUILDER)]
    while steps[-1] != "swapped":
        steps.append(sim.act(REBUILDER))
    return steps


def test_the_reader_finds_a_ticket_it_has_just_read_missing():
    result = scenario.run(BASELINE)

    assert [(v.inv, v.message, v.evidence) for v in result.violations] == [
        ("INV_012", MISSING, Evidence((1,), (), (1, 6))),
        ("INV_012", WENT_BACK, Evidence((1,), (), (9, 11))),
    ]
    # The first is the check after the rebuilder's first step (its `ticket.rebuild_started`
    # tells INV_012 to look): the queue is quiet and the table lacks ticket 1, created at
    # seq 1 and projected at seq 6. The second names the reader's two reads (9 and 11).
    assert result.violated() == ["INV_012"]


def test_what_the_reader_saw_at_each_read():
    """Version 1, then nothing, and between the two reads only the rebuild's first
    transaction. The rebuild then put the row back, whole and right: the end state hides
    the window, and only the reader's own log remembers it."""
    result = scenario.run(BASELINE)

    assert tickets_world.reads(result) == [(9, 1, 1), (11, 1, None)]
    between = [e.type for e in result.events if 9 < e.seq < 11]
    assert between == ["ticket.rebuild_started"]
    [rebuilt] = [e for e in result.events if e.type == "ticket.views_rebuilt"]
    assert rebuilt.seq == 12
    assert rebuilt.detail == {"started": 10, "tickets": 1, "taken_from_live": 0, "batches": 2}
    assert views.get_view(result.store, 1).version == 1
    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [WENT_BACK]


def test_the_window_is_in_the_database_not_in_the_reader():
    """No reader this time. After the rebuild's first step the queue is quiet and the
    table is empty, so a check of the database at that moment (what `fmlab check` runs)
    finds ticket 1 missing, and the projector's metrics call it stranded: no backlog, and
    the read model lacks a change a second old, FM_016's alarm, though nothing was lost.
    Two `filled` steps follow (ticket 1, then the batch that finds no more tickets) and
    the recount; after them the database is consistent again, and nothing in it says the
    window was ever open."""
    sim = scenario.quiet(BASELINE)
    sim.act(AGENT)
    sim.drain("w1")
    sim.advance(1.0)
    assert invariants.check(sim.store, only=["INV_012"]) == []
    assert not lag.projection(sim.store, sim.clock.now()).stranded

    assert sim.act(REBUILDER) == "emptied"
    assert [v.message for v in invariants.check(sim.store, only=["INV_012"])] == [MISSING]
    metrics = lag.projection(sim.store, sim.clock.now())
    assert (metrics.backlog, metrics.unprojected_oldest_ms, metrics.stranded) == (0, 1000.0, True)
    assert rebuilding_to_the_end(sim) == ["filled", "filled", "swapped"]
    result = sim.finish()

    assert invariants.check(result.store, final=True) == []
    assert not lag.projection(result.store, sim.clock.now()).stranded


def test_a_list_in_the_window_is_empty_then_partial_while_the_counts_say_two():
    """Two tickets, both projected. A list of the read model after each rebuild step: none
    of them, then ticket 1 alone, then both. The status counts are untouched until the
    recount, so all along they say 2 open: a page showing "Open (2)" above an empty list."""
    sim = scenario.quiet(BASELINE, 2)
    sim.act(AGENT)
    sim.act(AGENT)
    sim.drain("w1")
    assert [v.id for v in views.list_views(sim.store)] == [1, 2]

    seen = []
    while not seen or seen[-1][0] != "swapped":
        step = sim.act(REBUILDER)
        seen.append(
            (step, [v.id for v in views.list_views(sim.store)], views.status_counts(sim.store))
        )

    two_open = {"open": 2}
    assert seen == [
        ("emptied", [], two_open),
        ("filled", [1], two_open),
        ("filled", [1, 2], two_open),
        ("filled", [1, 2], two_open),
        ("swapped", [1, 2], two_open),
    ]


def test_a_late_projection_lands_in_the_emptied_table():
    """Ticket 1 is opened and moved to in_progress: two projection jobs. `w1` takes the
    first (version 1) and is slow; `w2` projects version 2, and the reader reads it. The
    rebuild empties the table, and `w1` commits version 1. The version guard (FM_017) is
    on, but it compares a projection with the row, and there is no row: version 1 is
    written as if it were new. The reader reads version 1 after version 2. The rebuild's
    fill then writes version 2 again from the write model, so the final row is right, and
    the read that went back stays in the log."""
    sim = scenario.quiet(BASELINE, changes=1, workers=2)
    assert [sim.act(AGENT), sim.act(AGENT)] == ["committed", "committed"]
    assert sim.step("w1", until="started") == "started"  # version 1, in w1's hands
    sim.drain("w2")  # version 2 is projected
    sim.act(READER)  # version 2
    assert sim.act(REBUILDER) == "emptied"
    assert sim.step("w1", until="acked") == "acked"  # version 1 lands: no row to lose to
    sim.act(READER)  # version 1
    rebuilding_to_the_end(sim)
    result = sim.finish()

    assert tickets_world.reads(result) == [(13, 1, 2), (19, 1, 1)]
    [late] = [e for e in result.events if e.type == "ticket.projected" and e.job_id == 1]
    assert (late.seq, late.detail["version"], late.detail["replaced"]) == (16, 1, 0)
    went_back = "ticket 1 was read at version 2, then at version 1: the read model went back"
    assert [(v.message, v.evidence) for v in result.violations] == [
        (
            "ticket 1's read-model row has status 'open' instead of 'in_progress', version 1"
            " instead of 2",
            Evidence((1, 2), (), (3, 16)),
        ),
        (
            "the status counts say 1 in_progress, 1 open, but the write model has 1 in_progress",
            Evidence((1, 2), (), (3, 16)),
        ),
        (went_back, Evidence((1, 2), (), (13, 19))),
    ]
    # The first two were true while the window was open (the queue was quiet after w1's
    # ack); the fill and the recount mended them. The read is history.
    assert views.get_view(result.store, 1).version == 2
    assert [v.message for v in invariants.check(result.store, final=True)] == [went_back]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_within_the_stated_seeds():
    """Two tickets, two projectors, a reader reading twice a command, two rebuilds, every
    fault site: INV_012 breaks in 203 of the first 500 seeds, starting with seed 2."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=2, workers=2)
    assert summary.failing == {"INV_012": [2]}, summary.failing


def test_the_first_explored_failure_reads_across_an_emptied_table():
    """Seed 2. The first rebuild (seqs 3 to 16) ran before any projection of ticket 1 had
    landed, and wrote it from the write model at version 3; the reader read that (seq 12).
    The second rebuild emptied the table (seq 17), and the reader found no row (seq 20).
    A late projection of version 2 then landed in the emptied table (seq 22)."""
    result = scenario.run(BASELINE, 2)

    [violation] = result.violations
    assert violation.message == (
        "ticket 1 was read at version 3, then at no row: the read model went back"
    )
    assert violation.evidence == Evidence((1, 2, 3, 4), (), (12, 20))
    rebuilds = [
        (e.seq, e.type)
        for e in result.events
        if e.type in ("ticket.rebuild_started", "ticket.views_rebuilt")
    ]
    assert rebuilds == [
        (3, "ticket.rebuild_started"),
        (16, "ticket.views_rebuilt"),
        (17, "ticket.rebuild_started"),
        (33, "ticket.views_rebuilt"),
    ]
    assert tickets_world.reads(result)[:3] == [(12, 1, 3), (13, 1, 3), (20, 1, None)]
    [landed] = [e for e in result.events if e.seq == 22]
    assert (landed.type, landed.detail["version"], landed.detail["replaced"]) == (
        "ticket.projected",
        2,
        0,
    )


def test_the_failure_shrinks_to_a_count_without_its_row():
    """Shrunk to 8 steps (from 19), one ticket and one worker, and two decisions: pick the
    rebuilder, twice. The agent opens ticket 1; w1 leases its projection and starts; the
    rebuilder empties the (still empty) table and fills it with ticket 1 from the write
    model, without counting it, since only the last step recounts. w1's projection then
    finds the row already there and is skipped, so it does not count it either. When w1
    acks, the queue is quiet, and the check finds the rebuild's half-done state: the row is
    right and the status counts say nothing. The shortest way to break INV_012 needs no
    reader at all: whoever looks inside the window sees the work in progress."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=2, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=2, workers=2), "INV_012")
    assert (shrunk.steps, shrunk.steps_before) == (8, 19), shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    picks = [(c.label, c.value) for c in result.decisions() if c.value]
    assert picks == [("next: w1 | agent | reader | rebuilder", 3)] * 2
    assert [e.type for e in result.events] == [
        "ticket.changed",
        "job.submitted",
        "job.leased",
        "execution.started",
        "ticket.rebuild_started",
        "effect.applied",
        "ticket.projection_skipped",
        "execution.committed",
        "job.succeeded",
    ]
    [skipped] = [e for e in result.events if e.type == "ticket.projection_skipped"]
    assert (skipped.detail["version"], skipped.detail["view_version"]) == (1, 1)
    assert [(v.message, v.evidence) for v in result.violations] == [
        (
            "the status counts say none, but the write model has 1 open",
            Evidence((1,), (), (1,)),
        )
    ]
