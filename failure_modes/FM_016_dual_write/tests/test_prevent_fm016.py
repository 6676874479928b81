"""FM_016, the fix: the ticket and its projection job commit in one transaction.

Under GUARDED a command is one transaction: the ticket's new version, its history row,
its `ticket.changed` event and the projection job that carries the new state to the read
model. The jobs table is the outbox: the job is written where the ticket is, and the queue
retries it however often a projector dies. An agent that dies can die before that commit
(nothing was written, and the command was never answered) or after it (the change and its
job are both there, and a projector finishes it); there is no moment in between.
"""

import functools

import pytest

from failure_modes.FM_016_dual_write import scenario
from failure_modes.proof import explored_clean
from failure_modes.tickets_world import world
from runtime import invariants
from runtime.faults import FaultMix
from runtime.policies import GUARDED
from runtime.sim import Simulation
from runtime.tickets import views
from runtime.tickets.model import PROJECT, all_tickets

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""


def one_ticket(changes: int = 0) -> Simulation:
    """The agent opening ticket 1 (and changing it `changes` times), one projector, no
    fault."""
    return Simulation(0, world(GUARDED, 1, 1, QUIET, changes=changes))


def written(store) -> list[tuple]:
    """(ticket, status, version) in the write model."""
    return [(t.id, t.status, t.version) for t in all_tickets(store)]


def read(store) -> list[tuple]:
    """(ticket, status, version) in the read model, as readers see it."""
    return [(v.id, v.status, v.version) for v in views.list_views(store)]


def projections(store) -> list[tuple]:
    """(ticket, version) each projection job carries, by job id."""
    sql = (
        "SELECT json_extract(payload, '$.ticket'), json_extract(payload, '$.version')"
        " FROM jobs WHERE kind = ? ORDER BY id"
    )
    return [tuple(row) for row in store.tuples(sql, (PROJECT,))]


def test_scripted_schedule_holds_every_invariant():
    """The same schedule as the repro: the agent's step, its death, w1 drains. Guarded,
    the agent's one step was the whole command, so its death finds nothing in flight:
    ticket 1 is in the write model, its job was enqueued with it, and w1 projected it."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert written(result.store) == read(result.store) == [(1, "open", 1)]
    assert views.status_counts(result.store) == {"open": 1}
    assert projections(result.store) == [(1, 1)]
    assert result.store.tuples("SELECT state FROM jobs") == [("SUCCEEDED",)]
    types = [e.type for e in result.events]
    assert types[:3] == ["ticket.changed", "job.submitted", "fault.client_crash"]
    assert "ticket.projected" in types


def test_one_step_writes_the_ticket_its_history_its_event_and_its_job():
    """A command has one step, `committed`: after it the ticket, its history row, its
    event and its projection job exist, written by one transaction (one moment on the
    clock, consecutive seqs, the change first), and INV_012 holds: the job is PENDING, so
    the check waits for it instead of finding a change nobody will project."""
    sim = one_ticket()
    assert sim.act("agent") == "committed"
    assert sim.violations == []

    events = sim.store.events()
    assert [(e.seq, e.type) for e in events] == [(1, "ticket.changed"), (2, "job.submitted")]
    assert len({e.at for e in events}) == 1
    assert events[1].detail["key"] == "ticket.project-1-v1"
    assert written(sim.store) == [(1, "open", 1)]
    assert sim.store.tuples("SELECT ticket_id, version FROM ticket_changes") == [(1, 1)]
    assert projections(sim.store) == [(1, 1)]
    assert sim.store.tuples("SELECT state FROM jobs") == [("PENDING",)]


def test_a_crash_anywhere_in_the_agent_s_commands_leaves_all_of_a_change_or_none():
    """Walk every point at which the agent can die while it opens ticket 1 and changes it
    three times (in progress, a note, closed): before each of its steps and after the last.
    Whatever the point, every version the write model holds has its projection job, w1
    projects them, and the read model ends equal to the write model. Guarded there are
    five such points, one before each command and one after the last."""
    steps = []
    sim = one_ticket(changes=3)
    while (step := sim.act("agent")) != "idle":
        steps.append(step)
    assert steps == ["committed"] * 4

    for crash_after in range(len(steps) + 1):
        sim = one_ticket(changes=3)
        for _ in range(crash_after):
            sim.act("agent")
        sim.actors.crash_agent()
        sim.drain("w1")
        result = sim.finish()

        assert result.violations == [], crash_after
        versions = [(1, v) for v in range(1, crash_after + 1)]
        assert projections(result.store) == versions, crash_after
        assert read(result.store) == written(result.store), crash_after
        if crash_after:
            assert [(t, v) for t, _, v in written(result.store)] == [(1, crash_after)]
        else:
            assert written(result.store) == [], crash_after


def test_an_explored_agent_crash_drops_a_whole_command_never_half():
    """Explored seed 1: ticket 1 is opened and changed three times, each command with its
    job; then the agent dies before it sends the next command, ticket 2's creation (mark
    `fault.client_crash`). Ticket 2 never exists, anywhere, and its changes are never
    sent; ticket 1 is closed in both models. Every fault site was in the mix (a projector
    crashed and paused too), and no invariant broke."""
    result = scenario.run(GUARDED, 1)

    assert result.violations == []
    assert result.marks["fault.client_crash"] == 1
    assert result.marks["fault.crash"] == 1 and result.marks["reaper.rescued"] > 0
    assert written(result.store) == read(result.store) == [(1, "closed", 4)]
    assert projections(result.store) == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert views.status_counts(result.store) == {"closed": 1}


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds: the agent opens two tickets and changes each three times while two
    projectors keep the read model and a reader reads it, every fault site in the mix, and
    the agent itself dying before any of its steps (mark `fault.client_crash`, 62 and 50
    times in the two chunks). No violation: a dead agent loses only a command it had not
    committed, and that was never answered."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    jobs, workers = scenario.META.world
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=jobs, workers=workers)
    assert summary.marks["fault.crash"] > 0  # projectors died too, and their jobs were rescued
    assert summary.marks["reaper.rescued"] > 0
