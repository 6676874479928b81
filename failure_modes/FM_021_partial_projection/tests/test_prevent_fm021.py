"""FM_021, the fix: the row and the counts commit together, with the record of the effect.

Under GUARDED a projection's two writes, the ticket's row and its status count moves, are
made in one transaction: the job's commit, which also records that the job's effect was
applied. A projector can die before that commit (nothing of the projection exists, and
the retry does all of it) or after it (all of it exists, and the retry's commit absorbs
the repeat); there is no moment in between. The ack only finishes the job. So the commit
boundary's rule, a recorded effect is never applied again, is safe: what is recorded is
the whole projection.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_021_partial_projection import scenario
from failure_modes.proof import explored_clean
from runtime import invariants
from runtime.faults import CRASH_STEPS, FaultMix
from runtime.policies import GUARDED
from runtime.sim import RunResult, Simulation
from runtime.tickets import views
from runtime.tickets.world import AGENT

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
LEASE_RUNS_OUT = GUARDED.lease_s + 1


def one_ticket() -> Simulation:
    """The agent and ticket 1, one projector, no fault: the scripted world."""
    return Simulation(0, tickets_world.world(GUARDED, 1, 1, QUIET, changes=0))


def projection(store) -> tuple:
    """Ticket 1's half of the read model: its row (id, status, version) or None, and the
    status counts."""
    view = views.get_view(store, 1)
    row = None if view is None else (view.id, view.status, view.version)
    return row, views.status_counts(store)


def absorbed(result: RunResult) -> list[tuple]:
    """(execution, job, the execution whose effect it found) of every absorbed repeat."""
    return [
        (e.execution_id, e.job_id, e.detail["first_execution"])
        for e in result.events
        if e.type == "effect.absorbed"
    ]


NOTHING = (None, {})
ALL = ((1, "open", 1), {"open": 1})


def test_scripted_schedule_holds_every_invariant():
    """The repro's schedule: w1 commits, dies before its ack, the reaper hands job 1 back,
    and the retry's commit absorbs the recorded effect. Guarded, what was recorded was the
    row and its count: the read model is whole, and the retry has nothing left to do."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert projection(result.store) == ALL
    assert absorbed(result) == [(2, 1, 1)]
    assert [e.execution_id for e in result.events if e.type == "ticket.projected"] == [1]
    assert result.store.tuples("SELECT state, attempts FROM jobs") == [("SUCCEEDED", 2)]


def test_the_commit_writes_the_row_and_the_count_and_the_ack_writes_neither():
    """After `committed` the row and the count are both in the read model, written by the
    commit's one transaction (the effect record, the projection and the commit's event:
    seqs 5-7); the ack, the next transaction, adds no count."""
    sim = one_ticket()
    sim.act(AGENT)
    assert projection(sim.store) == NOTHING
    assert sim.step("w1", until="committed") == "committed"
    assert projection(sim.store) == ALL
    assert sim.queue._deferred_counts == {}  # nothing waits in memory for the ack
    commit = [(e.seq, e.type) for e in sim.store.events()[4:]]
    assert commit == [(5, "effect.applied"), (6, "ticket.projected"), (7, "execution.committed")]

    assert sim.step("w1") == "acked"
    assert projection(sim.store) == ALL
    assert sim.violations == []


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_crash_at_any_step_leaves_all_of_the_projection_or_none(step):
    """w1 dies after each step of its attempt in turn. Before the commit, nothing of the
    projection exists; after it, all of it does. Either way the retry ends with the row
    and the count right, and the ticket projected once: a retry after the commit absorbs
    the repeat, a retry before it projects for the first time."""
    sim = one_ticket()
    sim.act(AGENT)
    assert sim.step("w1", until=step) == step
    sim.crash("w1")
    assert projection(sim.store) == (ALL if step == "committed" else NOTHING), step
    sim.advance(LEASE_RUNS_OUT)
    assert sim.reap() == [1]
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == [], step
    assert projection(result.store) == ALL
    projected = [e.execution_id for e in result.events if e.type == "ticket.projected"]
    if step == "committed":
        assert (projected, absorbed(result)) == ([1], [(2, 1, 1)])
    else:
        assert (projected, absorbed(result)) == ([2], [])


def test_a_lease_that_runs_out_after_the_commit_loses_nothing():
    """w1 stalls after its commit past its lease; the reaper hands job 1 back, and w1's
    ack is refused by the fence. Nothing was waiting for that ack: the count was written
    at the commit. The retry absorbs the repeat and finishes the job."""
    sim = one_ticket()
    sim.act(AGENT)
    sim.step("w1", until="committed")
    sim.advance(LEASE_RUNS_OUT)
    assert sim.reap() == [1]
    assert sim.step("w1") == "lease_lost"
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    assert projection(result.store) == ALL
    assert absorbed(result) == [(2, 1, 1)]


def test_explored_seed_3_counts_what_the_baseline_lost():
    """The baseline's seed 3 lost two projections' moves to failed acks. Guarded, the same
    timeline (the lever draws nothing from the tape) fails the same two acks and absorbs
    the same two retries, and the counts are right: both tickets closed."""
    result = scenario.run(GUARDED, 3)

    assert result.violations == []
    assert absorbed(result) == [(10, 3, 3), (11, 6, 6)]
    assert result.marks["fault.db_error"] == 3
    assert views.status_counts(result.store) == {"closed": 2}


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds: two tickets, each opened and changed three times, two projectors, a
    reader, every fault site and the agent dying between commands. No violation. The
    marks are the guard's trigger: projectors died (`fault.crash`, 285 and 255 times in
    the two chunks), and retries found their job's effect already recorded and absorbed
    it (`effect.absorbed`, 245 and 248 times). Every absorbed retry is an attempt that
    committed and never acked, by a crash, a lost ack, a failed transaction or a lease
    that ran out: the window in which the baseline loses its counts."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    jobs, workers = scenario.META.world
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=jobs, workers=workers)
    assert summary.marks["reaper.rescued"] > 0
    assert summary.marks["fault.lost_ack"] > 0
