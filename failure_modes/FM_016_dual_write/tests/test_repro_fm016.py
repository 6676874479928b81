"""FM_016, the break: the ticket is saved, and its projection is enqueued too late.

Baseline = GUARDED with exactly one lever off (`ticket_outbox`). A command is carried out
as a dual write: the ticket is saved in one transaction (`ticket_saved`), and the job that
will carry its new state to the read model is enqueued in a second (`projection_enqueued`).
The agent opens ticket 1, the first transaction commits, and the agent dies before the
second. The write model has ticket 1 at version 1; the jobs table has nothing; the read
model will never have it. Nothing failed, so nothing retries. INV_012 names the change
(its `ticket.changed` event): there is no job to name, because none was ever enqueued.
"""

import functools

from failure_modes.FM_016_dual_write import scenario
from failure_modes.tickets_world import world
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.faults import FaultMix
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, views
from runtime.tickets.model import all_tickets

BASELINE = GUARDED.without("ticket_outbox")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
LOST = [
    "ticket 1 is in the write model at version 1 but not in the read model",
    "the status counts say none, but the write model has 1 open",
]


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def one_ticket(changes: int = 0) -> Simulation:
    """The agent opening ticket 1 (and changing it `changes` times), one projector, no
    fault: the scripted world."""
    return Simulation(0, world(BASELINE, 1, 1, QUIET, changes=changes))


def written(store) -> list[tuple]:
    """(ticket, status, version) in the write model."""
    return [(t.id, t.status, t.version) for t in all_tickets(store)]


def read(store) -> list[tuple]:
    """(ticket, status, version) in the read model, as readers see it."""
    return [(v.id, v.status, v.version) for v in views.list_views(store)]


def cut_off(result: RunResult) -> list[tuple[int, int]]:
    """(ticket, version) of every change an agent crash caught between its two
    transactions: the change was saved, and the agent died before it enqueued the
    projection. Only the agent writes `ticket.changed` and `job.submitted` here."""
    saved, cut = None, []
    for event in result.events:
        if event.type == "ticket.changed":
            saved = (event.detail["ticket"], event.detail["version"])
        elif event.type == "job.submitted":
            saved = None
        elif event.type == "fault.client_crash" and saved is not None:
            cut.append(saved)
            saved = None
    return cut


@functools.cache
def explored(seed: int) -> RunResult:
    return scenario.run(BASELINE, seed)


def test_the_change_was_saved_and_no_projection_will_ever_carry_it():
    result = scenario.run(BASELINE)

    lost = by_inv(result, "INV_012")
    assert [v.message for v in lost] == LOST
    # The evidence is the change itself (event 1); there is no job to name: none exists.
    assert [(v.evidence.jobs, v.evidence.events) for v in lost] == [((), (1,)), ((), (1,))]
    [changed] = [e for e in result.events if e.seq == 1]
    assert (changed.type, changed.detail["ticket"], changed.detail["version"]) == (
        "ticket.changed",
        1,
        1,
    )
    assert result.violated() == ["INV_012"]


def test_the_agent_saved_the_ticket_then_died():
    """The timeline is two events: the change, and the agent's death. No `job.submitted`
    between them, and nothing after: w1 had nothing to do."""
    result = scenario.run(BASELINE)

    assert [(e.seq, e.type, e.worker) for e in result.events] == [
        (1, "ticket.changed", None),
        (2, "fault.client_crash", "agent"),
    ]
    assert result.steps == 1  # the agent's one step; the crash is not a step, w1 found none


def test_a_command_is_two_transactions_and_the_first_alone_is_reported():
    """Without the outbox a command is two steps. After the first, `ticket_saved`, the
    queue is quiet and the write model holds a change no job will project: INV_012 is
    reported at that step, crash or not. The second step enqueues the projection, w1
    projects it, and the final database is consistent; the report stands, because the
    window is the bug (a crash inside it makes it last)."""
    sim = one_ticket()
    assert sim.act("agent") == "ticket_saved"
    assert [v.message for v in sim.violations] == LOST
    assert sim.store.tuples("SELECT id FROM jobs") == []
    assert sim.act("agent") == "projection_enqueued"
    sim.drain("w1")
    result = sim.finish()

    assert invariants.check(result.store, final=True) == []  # the end state hides it
    assert read(result.store) == [(1, "open", 1)]
    assert result.violated() == ["INV_012"]


def test_the_write_model_has_the_ticket_the_read_model_and_the_queue_have_nothing():
    """The write model holds ticket 1 and its history; the jobs table is empty; the read
    model has no row and counts no ticket. A reader asking for ticket 1 finds nothing."""
    sim = one_ticket()
    sim.act("agent")
    sim.actors.crash_agent()
    sim.drain("w1")
    assert sim.act("reader") == "read"  # the reader asks for ticket 1
    result = sim.finish()

    assert written(result.store) == [(1, "open", 1)]
    assert result.store.tuples("SELECT ticket_id, version, command FROM ticket_changes") == [
        (1, 1, "create")
    ]
    assert result.store.tuples("SELECT id FROM jobs") == []
    assert read(result.store) == []
    assert views.status_counts(result.store) == {}
    [seen] = [e for e in result.events if e.type == "ticket.read"]
    assert (seen.detail["ticket"], seen.detail["version"]) == (1, None)


def test_the_projector_looks_healthy_and_the_ticket_falls_behind_for_good():
    """What the service reports (`/health`, `/metrics`): no backlog, no error, no dead
    letter, and no lag sample at all, because lag is measured on projections and this
    version never had one. Only the per-read measure sees it: a minute later, ticket 1 has
    been missing from the read model for 60,000 ms, 120 times the 500 ms contract, and it
    grows for as long as anyone asks."""
    result = scenario.run(BASELINE)

    stats = lag.projection(result.store)
    assert (stats.backlog, stats.errors, stats.dead, stats.samples) == (0, 0, 0, 0)
    assert stats.lag_p99_ms == 0.0
    assert lag.behind_ms(result.store, 1, None, 60.0) == 60_000.0 == 120 * lag.READ_LAG_MS


def test_nothing_repairs_it_but_a_rebuild_from_the_write_model():
    """Checked afresh on the final database alone, both violations stand: `fmlab check`
    finds it in a real database. The queue never will (there is no job to retry); a rebuild
    by replay, which reads the write model and not the queue, puts ticket 1 back."""
    result = scenario.run(BASELINE)

    assert [v.message for v in invariants.check(result.store, final=True)] == LOST
    rebuilt = views.rebuild(result.store, SimClock(60.0))
    assert rebuilt.tickets == 1
    assert read(result.store) == [(1, "open", 1)]
    assert invariants.check(result.store, final=True) == []


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]
    assert [v.inv for v in first.violations] == ["INV_012", "INV_012"]


def test_exploration_finds_it_on_the_first_seed():
    """Every ticket's creation passes through the window while the queue is quiet, so every
    explored run reports INV_012 (2,000 of 2,000 seeds), whether or not the agent dies."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    assert "INV_012" in summary.failing, summary.failing


def test_exploration_finds_the_window_the_healed_loss_and_the_lasting_one():
    """Among the first 20 seeds every run reports INV_012. Where no agent crash fell
    between a change and its projection's enqueue, the final database is consistent: only
    the window was reported. Seed 3 is the first with such a crash: the agent died right
    after saving ticket 1's creation, and the next command's projection, which carries the
    whole ticket, covered it. Seed 9 is the first whose loss lasts: the agent died after
    saving each ticket's last change, the closing, so both tickets are closed in the write
    model and in progress in the read model, for good."""
    seeds = range(20)
    assert all(explored(seed).violated() == ["INV_012"] for seed in seeds)
    for seed in seeds:
        if not cut_off(explored(seed)):
            assert invariants.check(explored(seed).store, final=True) == [], seed
    crashed_between = [seed for seed in seeds if cut_off(explored(seed))]
    lasting = [s for s in crashed_between if invariants.check(explored(s).store, final=True)]
    assert crashed_between[0] == 3, crashed_between
    assert lasting[0] == 9, lasting

    healed = explored(3)
    assert cut_off(healed) == [(1, 1)]
    assert invariants.check(healed.store, final=True) == []
    assert "ticket.project-1-v1" not in {
        key for (key,) in healed.store.tuples("SELECT idempotency_key FROM jobs")
    }

    result = explored(9)
    assert cut_off(result) == [(1, 4), (2, 4)]
    assert written(result.store) == [(1, "closed", 4), (2, "closed", 4)]
    assert read(result.store) == [(1, "in_progress", 3), (2, "in_progress", 3)]
    keys = [key for (key,) in result.store.tuples("SELECT idempotency_key FROM jobs ORDER BY id")]
    assert "ticket.project-1-v4" not in keys and "ticket.project-2-v4" not in keys
    final = invariants.check(result.store, final=True)
    assert [v.message.split(" has ")[0] for v in final[:2]] == [
        "ticket 1's read-model row",
        "ticket 2's read-model row",
    ]
    assert all("version 3 instead of 4" in v.message for v in final[:2])
    assert (
        final[2].message == "the status counts say 2 in_progress, but the write model has 2 closed"
    )
    # Each ticket's evidence: its projection jobs (none for version 4), its last change
    # (the closing) and its last projection (version 3).
    assert [v.evidence.jobs for v in final[:2]] == [(1, 2, 3), (4, 5, 6)]
    assert [v.evidence.events for v in final[:2]] == [(25, 43), (58, 63)]


def test_the_failure_shrinks_to_the_agent_s_first_transaction():
    """Shrunk: one ticket, one worker, one step, and no decision but the plainest. The
    agent saves ticket 1, and the check after that step reports the change no job will
    project. The window is the design, not bad luck."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    case = summary.first_failure.case(jobs=jobs, workers=workers)
    shrunk = shrink(BUILD, case, "INV_012")
    assert shrunk.steps == 1, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    assert [c for c in result.decisions() if c.value] == []
    assert [(e.type, e.detail["command"]) for e in result.events] == [("ticket.changed", "create")]
    assert [v.message for v in result.violations] == LOST
