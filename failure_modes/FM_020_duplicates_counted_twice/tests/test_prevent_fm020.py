"""FM_020, the fix: the counts move by the row's own change, in the write that makes it.

Under GUARDED the projector reads the row's status before it writes, and moves the counts
only if its write went through: the old status -1 (if there was a row), the new one +1,
in the same transaction as the row. A delivery the version guard skips moves nothing. So
the counter inherits the row's idempotence: however many roads a change takes to the read
model (its own job, a retry, a rebuild's replay), it is counted when it changes a row,
and a row changes once per version.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_020_duplicates_counted_twice import scenario
from failure_modes.proof import explored_clean
from runtime import invariants
from runtime.faults import FaultMix
from runtime.policies import GUARDED
from runtime.sim import RunResult, Simulation
from runtime.tickets import views
from runtime.tickets.world import AGENT, REBUILDER

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""


def skipped(result: RunResult) -> list[tuple[int, int, int, int]]:
    """(seq, job, version, the row's version) of every projection the version guard skipped."""
    return [
        (e.seq, e.job_id, e.detail["version"], e.detail["view_version"])
        for e in result.events
        if e.type == "ticket.projection_skipped"
    ]


def test_scripted_schedule_holds_every_invariant():
    """The repro's schedule: the rebuild replays ticket 1 at version 2 and counts 1 in
    progress; then both jobs are delivered, both writes are skipped, and neither moves a
    count. The jobs still SUCCEEDED at their first attempt: a skip is not a failure."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert skipped(result) == [(10, 1, 1, 2), (16, 2, 2, 2)]
    assert views.status_counts(result.store) == {"in_progress": 1}
    assert (result.marks["projection.skipped"], result.marks["rebuild.swapped"]) == (2, 1)
    jobs = result.store.tuples("SELECT id, state, attempts FROM jobs ORDER BY id")
    assert [tuple(job) for job in jobs] == [(1, "SUCCEEDED", 1), (2, "SUCCEEDED", 1)]


def test_a_late_delivery_after_a_rebuild_is_skipped_and_counts_nothing():
    """The baseline's shrunk schedule, guarded. The rebuild starts; w1 takes job 1; the
    agent moves the ticket in progress; the rebuild copies version 2 into its shadow; w1
    lands version 1 in the live table (a real write: 1 open); the swap puts version 2 in
    place and recounts (1 in progress). Job 2 arrives late: its row is already at version
    2, so the write is skipped, and the counts stay at 1 in progress."""
    sim = Simulation(0, tickets_world.world(GUARDED, 1, 1, QUIET, changes=1, rebuilds=1))
    sim.act(AGENT)
    assert sim.act(REBUILDER) == "started"
    assert sim.step("w1", until="started") == "started"  # job 1, version 1
    sim.act(AGENT)  # version 2, job 2
    assert sim.act(REBUILDER) == "filled"  # the shadow holds ticket 1 at version 2
    assert sim.step("w1", until="committed") == "committed"  # version 1, in the live table
    assert views.status_counts(sim.store) == {"open": 1}
    assert sim.act(REBUILDER) == "filled"  # no more tickets
    assert sim.step("w1", until="acked") == "acked"
    assert sim.act(REBUILDER) == "swapped"
    view = views.get_view(sim.store, 1)
    assert (view.status, view.version) == ("in_progress", 2)
    assert views.status_counts(sim.store) == {"in_progress": 1}

    sim.drain("w1")  # job 2, late
    result = sim.finish()

    assert result.violations == []
    assert [s[1:] for s in skipped(result)] == [(2, 2, 2)]
    assert views.status_counts(result.store) == {"in_progress": 1}


def test_explored_seed_1_counts_none_of_the_replayed_deliveries():
    """The baseline's seed 1 counted ticket 2's and ticket 1's creations a second time
    after the rebuild. Guarded, the same timeline skips the same four deliveries (seqs 39,
    48, 70 and 99), moves no count for any of them, and ends at 2 closed."""
    result = scenario.run(GUARDED, 1)

    assert result.violations == []
    assert skipped(result) == [(39, 3, 3, 3), (48, 5, 1, 1), (70, 1, 1, 3), (99, 7, 3, 4)]
    assert views.status_counts(result.store) == {"closed": 2}


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds: two tickets, each opened and changed three times, two projectors, a
    reader, one rebuild during the run, every fault site and the agent's crash. No
    violation. Every rebuild swapped (250 in each chunk), and the version guard skipped
    882 and 836 deliveries in the two chunks, none of which moved a count."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    jobs, workers = scenario.META.world
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=jobs, workers=workers)
    assert summary.marks["rebuild.swapped"] == len(seeds)  # every rebuild finished
