"""FM_022, the break: the rebuild run to mend a damaged row keeps it.

Baseline = GUARDED with exactly one lever off (`full_rebuild`). The agent opens ticket 1 and
w1 projects it: the read model holds ticket 1 at version 1, right. Then the row is damaged,
its preview garbled and its version untouched, and the service's reconciliation finds it:
a row at its ticket's current version that is not what projecting the ticket gives. The
remedy is a rebuild by replay, and the rebuild is a catch-up: it re-projects only the
tickets whose row is missing or behind, and takes every other row from the live table as
it is. Ticket 1's row is neither missing nor behind, so the damage goes into the new table,
the rebuild logs a table of one ticket, and INV_012 names the row it did not mend.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_022_corrupt_row_survives_rebuild import scenario
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.faults import FaultMix
from runtime.invariants.evidence import Evidence
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, views
from runtime.tickets.world import AGENT, REBUILDER

BASELINE = GUARDED.without("full_rebuild")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the test did it."""
GARBLED = "ticket 1's read-model row has preview 'garbled' instead of 'Help'"
UNMENDED = "ticket 1's read-model row was found damaged and no rebuild since has swapped in"


def reconciling(tickets: int = 1, *, rounds: int = 1, changes: int = 0) -> Simulation:
    """The scripted world: `tickets` tickets, one projector, no reader, and a rebuilder
    that reconciles `rounds` times; `view_corrupt` is on and fires at the first
    reconciliation (scenario.SCRIPTED_TAPE)."""
    world = tickets_world.world(
        BASELINE,
        tickets,
        1,
        scenario.SCRIPTED_MIX,
        changes=changes,
        reads=0,
        rebuilds=rounds,
        reconcile=True,
    )
    return Simulation(0, world, tape=scenario.SCRIPTED_TAPE)


def rebuilder_to_the_end(sim: Simulation) -> list[str]:
    """Every step the rebuilder has left: its reconciliations and their rebuilds."""
    steps = []
    while REBUILDER in sim.actors.ready():
        steps.append(sim.act(REBUILDER))
    return steps


def rebuilt(**detail: int) -> dict[str, int]:
    """What a `ticket.views_rebuilt` event says: when its rebuild started, the rows in the
    table it swapped in, the rows it took from the live table, the batches of its fill."""
    return detail


def of_type(result: RunResult, *types: str) -> list[tuple[int, str, dict]]:
    return [(e.seq, e.type, e.detail) for e in result.events if e.type in types]


def test_the_rebuild_keeps_the_row_it_was_run_to_mend():
    result = scenario.run(BASELINE)

    assert [(v.inv, v.message, v.evidence) for v in result.violations] == [
        ("INV_012", GARBLED, Evidence((1,), (), (1, 6)))
    ]
    # The evidence is the ticket's projection job and its latest change and projection
    # (seq 1, seq 6): the row was right when w1 wrote it. Nothing in the write model changed
    # since; the row did, and the rebuild kept it.
    view = views.get_view(result.store, 1)
    assert view is not None and (view.preview, view.version) == ("garbled", 1)
    assert result.violated() == ["INV_012"]


def test_the_damage_was_found_and_a_rebuild_claims_to_have_mended_it():
    """The garbling (seq 9), the finding (seq 10, ticket 1), and a rebuild that started
    after it (seq 11) and swapped in (seq 12). By its record the rebuild made a table of one
    ticket, every ticket the write model has, in one batch; the batch wrote nothing (the
    catch-up found no row missing or behind), and the one row came from the live table:
    `taken_from_live` 1. Guarded, the same rebuild writes ticket 1 in its first batch,
    finds no more in its second, and takes nothing from live."""
    result = scenario.run(BASELINE)

    assert of_type(
        result,
        "fault.view_corrupt",
        "ticket.views_suspect",
        "ticket.rebuild_started",
        "ticket.views_rebuilt",
    ) == [
        (9, "fault.view_corrupt", {"ticket": 1}),
        (10, "ticket.views_suspect", {"tickets": [1]}),
        (11, "ticket.rebuild_started", {}),
        (12, "ticket.views_rebuilt", rebuilt(started=11, tickets=1, taken_from_live=1, batches=1)),
    ]
    assert (result.marks["views.suspect"], result.marks["rebuild.swapped"]) == (1, 1)


def test_nothing_looks_stale():
    """The projector's metrics (what `GET /metrics` and `/health` report) see nothing: no
    backlog, no error, and no change the read model lacks, since the garbled row holds the
    ticket's newest version. Lag is measured in versions, and damage has none."""
    result = scenario.run(BASELINE)

    metrics = lag.projection(result.store, result.events[-1].at + 60)
    assert (metrics.backlog, metrics.errors, metrics.dead) == (0, 0, 0)
    assert (metrics.unprojected_oldest_ms, metrics.stranded) == (0.0, False)


def test_inv_012_waits_for_the_repair_then_judges_it():
    """Once the service has found the row damaged, the row is under repair and INV_012 does
    not compare it: a check after the finding and after each step of the rebuild finds
    nothing, though the row says 'garbled' all along. The rebuild's swap ends the repair,
    and the first check after it compares the row again and reports it."""
    sim = reconciling()
    sim.act(AGENT)
    sim.drain("w1")

    seen = []
    while not seen or seen[-1][0] != "swapped":
        step = sim.act(REBUILDER)
        found = [v.message for v in invariants.check(sim.store, only=["INV_012"])]
        seen.append((step, views.get_view(sim.store, 1).preview, found))

    assert seen == [
        ("found_damage", "garbled", []),
        ("started", "garbled", []),
        ("filled", "garbled", []),
        ("swapped", "garbled", [GARBLED]),
    ]


def test_reconciling_again_finds_the_same_row():
    """After the rebuild, the reconciliation is run again over the final database (what
    `fmlab reconcile` does): it finds ticket 1 again. Then the row is under repair once
    more, and a final check reports the finding that no rebuild has mended."""
    result = scenario.run(BASELINE)

    assert views.reconcile(result.store, SimClock(result.events[-1].at + 60)) == [1]
    [again] = [e for e in result.store.events() if e.type == "ticket.views_suspect"][1:]
    assert (again.seq, again.detail) == (13, {"tickets": [1]})
    found = invariants.check(result.store, final=True)
    assert [(v.message, v.evidence) for v in found] == [(UNMENDED, Evidence((1,), (), (13,)))]


def test_every_catch_up_keeps_it():
    """Two rounds. The second reconciliation finds ticket 1 again (seq 13), a second
    rebuild runs (seqs 14 and 15), and keeps the row again, by the same rule: a row at its
    ticket's version is trusted. A rebuild that cannot mend a row cannot mend it by being
    run twice."""
    sim = reconciling(rounds=2)
    sim.act(AGENT)
    sim.drain("w1")
    steps = rebuilder_to_the_end(sim)
    result = sim.finish()

    assert steps == ["found_damage", "started", "filled", "swapped"] * 2
    assert of_type(result, "ticket.views_suspect", "ticket.views_rebuilt") == [
        (10, "ticket.views_suspect", {"tickets": [1]}),
        (12, "ticket.views_rebuilt", rebuilt(started=11, tickets=1, taken_from_live=1, batches=1)),
        (13, "ticket.views_suspect", {"tickets": [1]}),
        (15, "ticket.views_rebuilt", rebuilt(started=14, tickets=1, taken_from_live=1, batches=1)),
    ]
    assert [(v.message, v.evidence) for v in result.violations] == [
        (GARBLED, Evidence((1,), (), (1, 6)))
    ]


def test_a_row_behind_is_lag_not_damage():
    """The agent opens ticket 1 and moves it in progress; w1 has projected only version 1
    when the row is garbled. The reconciliation leaves it (`reconciled`, nothing logged):
    a row behind its ticket is a projection still to come, and that projection rewrites the
    whole row. When w1 projects version 2 the garbling is gone, and nothing is reported."""
    sim = reconciling(changes=1)
    sim.act(AGENT)
    sim.drain("w1")  # version 1
    assert sim.act(AGENT) == "committed"  # version 2; its projection job waits
    assert sim.act(REBUILDER) == "reconciled"
    view = views.get_view(sim.store, 1)
    assert view is not None and (view.preview, view.version) == ("garbled", 1)
    sim.drain("w1")  # version 2 lands on the garbled row
    result = sim.finish()

    assert [e.type for e in result.events if e.type.startswith(("fault.", "ticket.views"))] == [
        "fault.view_corrupt"
    ]
    view = views.get_view(result.store, 1)
    assert view is not None and (view.preview, view.status, view.version) == (
        "Help",
        "in_progress",
        2,
    )
    assert result.violations == []


def test_the_catch_up_looks_at_the_version_alone():
    """Two tickets, both garbled by hand (the UPDATE a person might run). Ticket 1's row
    is at its ticket's version 2; ticket 2's row is at version 1, its version 2 still
    waiting for w1. The reconciliation finds ticket 1 only: ticket 2's row is lag. The
    catch-up rebuild then re-projects ticket 2, the row behind, and takes ticket 1 from the
    live table. Same damage, opposite fates, and the only difference is the version: the
    catch-up is right about lag and blind to damage."""
    world = tickets_world.world(BASELINE, 2, 1, QUIET, changes=1, reads=0)
    sim = Simulation(0, world)
    for _ in range(3):  # ticket 1 opened and moved in progress, ticket 2 opened
        sim.act(AGENT)
    sim.drain("w1")
    sim.act(AGENT)  # ticket 2 in progress: version 2, its job waits
    sim.store.all("UPDATE ticket_views SET preview = 'garbled'")

    assert views.reconcile(sim.store, sim.clock) == [1]
    done = views.rebuild(sim.store, sim.clock, batch=1, policies=BASELINE)
    assert (done.tickets, done.taken_from_live, done.batches) == (2, 1, 2)
    rows = [(v.id, v.version, v.preview) for v in views.list_views(sim.store)]
    assert rows == [(1, 2, "garbled"), (2, 2, "Help")]
    sim.drain("w1")  # ticket 2's version 2 arrives, and finds the rebuild was there first
    result = sim.finish()

    assert [(v.message, v.evidence) for v in result.violations] == [
        (GARBLED, Evidence((1, 2), (), (3, 16)))
    ]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_within_the_stated_seeds():
    """Two tickets opened and changed three times, two projectors, a reader, two rounds of
    reconciliation, every fault site, the agent's crash and the garbled row: INV_012 breaks
    in 42 of the first 500 seeds, starting with seed 15."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    assert summary.failing == {"INV_012": [15]}, summary.failing


def test_the_first_explored_failure_garbled_a_row_twice():
    """Seed 15. The first reconciliation garbled ticket 1's row at version 1 while the ticket
    was at version 4 (seq 43): lag, left alone, and w2's projection of version 4 rewrote the
    row whole (seq 46). The second garbled it again, now at its ticket's version (seq 49),
    and found it (seq 50). The catch-up rebuild (seqs 56 and 57) re-projected ticket 2, whose
    row was behind, and took ticket 1's from the live table."""
    result = scenario.run(BASELINE, 15)

    assert of_type(
        result,
        "fault.view_corrupt",
        "ticket.views_suspect",
        "ticket.rebuild_started",
        "ticket.views_rebuilt",
    ) == [
        (43, "fault.view_corrupt", {"ticket": 1}),
        (49, "fault.view_corrupt", {"ticket": 1}),
        (50, "ticket.views_suspect", {"tickets": [1]}),
        (56, "ticket.rebuild_started", {}),
        (57, "ticket.views_rebuilt", rebuilt(started=56, tickets=2, taken_from_live=1, batches=2)),
    ]
    [rewrote] = [e for e in result.events if e.seq == 46]
    assert (rewrote.type, rewrote.detail) == (
        "ticket.projected",
        {"replaced": 1, "ticket": 1, "version": 4},
    )
    assert [(v.message, v.evidence) for v in result.violations] == [
        (GARBLED, Evidence((1, 2, 3, 4), (), (19, 46)))
    ]


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_one_ticket_found_damaged_and_kept():
    """Shrunk to 27 steps (from 73), one ticket and one worker. The decisions that are not
    the plainest: two fault sites switched on (`client_crash`, `view_corrupt`); the reader
    picked four times while w1 works, which spends its reads, so that when the agent is
    gone the rebuilder is the only actor left; the agent dying before its last command
    (closing the ticket), so everything is sent after three; and the garbling at the
    reconciliation. Then the plainest path: the row at version 3 is found damaged, the
    catch-up fills nothing in its one batch, and the swap keeps the row."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=jobs, workers=workers), "INV_012")
    assert (shrunk.steps, shrunk.steps_before) == (27, 73), shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)

    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    assert [(c.label, c.value) for c in result.decisions() if c.value] == [
        ("switch on client_crash", 1),
        ("switch on view_corrupt", 1),
        *[("next: w1 | agent | reader", 2)] * 4,
        ("agent crash: none | client_crash", 1),
        ("view corrupt: none | view_corrupt", 1),
    ]
    assert of_type(
        result,
        "fault.client_crash",
        "fault.view_corrupt",
        "ticket.views_suspect",
        "ticket.rebuild_started",
        "ticket.views_rebuilt",
    ) == [
        (29, "fault.client_crash", {}),
        (30, "fault.view_corrupt", {"ticket": 1}),
        (31, "ticket.views_suspect", {"tickets": [1]}),
        (32, "ticket.rebuild_started", {}),
        (33, "ticket.views_rebuilt", rebuilt(started=32, tickets=1, taken_from_live=1, batches=1)),
    ]
    assert [(v.message, v.evidence) for v in result.violations] == [
        (GARBLED, Evidence((1, 2, 3), (), (21, 26)))
    ]
