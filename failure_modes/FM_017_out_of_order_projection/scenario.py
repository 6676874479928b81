"""FM_017 out-of-order projection: a late delivery of an older version overwrites a newer one.

An agent opens ticket 1 and moves it in progress: two commands, versions 1 and 2, and two
projection jobs, each carrying the ticket as of its version. Two projectors take one job
each. The one with version 2 finishes first; the one with version 1 was merely slower (a
retry after a crash, a lease that ran out and was handed on, a worker that paused would do
the same). Delivery is at-least-once and nothing orders two jobs of one ticket, so the
projector must not trust arrival order. Without the guard every delivery overwrites: the
late version 1 lands on top of version 2, a reader who saw "in progress" now sees "open",
and since no newer job is coming the read model stays wrong for good. The guard is the
version: a projection is written only when it is newer than the row, decided by the
database in the write itself, so the late one changes nothing.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT, READER

META = Meta(
    id="FM_017",
    title="Out-of-order events: a late projection overwrites a newer one",
    lever="version_guard",
    invariants=("INV_012",),
    summary="Two projection jobs of one ticket finish out of order and the projector writes "
    "whatever arrives last: version 1 lands on version 2 and the read model goes back.",
    marks=("projection.skipped",),
    found_within=1,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)


def scenario(
    policies: Policies = GUARDED,
    jobs: int = 2,
    workers: int = 2,
    mix: FaultMix = tickets_world.MIX,
) -> Scenario:
    """The world the explorer searches: `jobs` tickets, each opened and changed three
    times by the agent, projected by `workers` workers, read as they go; every fault site,
    and the agent may die between its transactions."""
    return tickets_world.world(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    world = tickets_world.world(policies, 1, 2, FaultMix(sites=()), changes=1)
    sim = Simulation(0, world)
    sim.act(AGENT)  # create ticket 1: version 1, projection job 1
    sim.act(AGENT)  # move it in progress: version 2, projection job 2
    sim.step("w1", until="leased")  # w1 takes job 1 (oldest first) and is slow about it
    sim.drain("w2")  # w2 takes job 2 and finishes it: version 2 is in the read model
    sim.act(READER)  # the reader sees ticket 1 at version 2, in progress
    sim.drain("w1")  # w1 finishes job 1 late: version 1 arrives after version 2
    sim.act(READER)  # baseline: the reader sees version 1 again, open
    return sim.finish()
