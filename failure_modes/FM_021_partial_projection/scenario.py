"""FM_021 partial projection: the row is written, the counts never move.

A projection makes two writes to the read model: the ticket's row in `ticket_views` and
the status counts in `ticket_status_counts` (how many tickets are open, in progress,
closed). Guarded they are one transaction, the job's commit, with the record that the
job's effect was applied. Here the row is written at the commit and the count moves are
kept in the projector's memory until its ack, a second transaction. A projector that dies
between the two takes the moves with it. The queue does what it should: the lease runs
out, the reaper hands the job back, and the retry's commit finds the job's effect already
recorded and absorbs it (the commit boundary, FM_001's guard), so the projection is not
redone and the retry's ack has nothing to count. Every job SUCCEEDED, the row is right,
and the counts are wrong for good. The guard is the first habit again, one step further:
everything one message changes commits with the record that it was handled.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT

META = Meta(
    id="FM_021",
    title="Partial projection: the row is written, the counts never move",
    lever="atomic_projection",
    invariants=("INV_012",),
    summary="A projection writes its row at the commit and its status counts at the ack; "
    "a projector that dies between leaves the counts unmoved, and the retry is absorbed.",
    marks=("fault.crash", "effect.absorbed"),
    found_within=4,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)


def scenario(
    policies: Policies = GUARDED,
    jobs: int = 2,
    workers: int = 2,
    mix: FaultMix = tickets_world.MIX,
) -> Scenario:
    """The tickets world: the agent opens `jobs` tickets and changes each three times while
    `workers` projectors keep the read model and a reader reads it; every fault site, and
    the agent may die between its transactions."""
    return tickets_world.world(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    # One ticket, opened and never changed; one projector; no fault but the one scripted.
    quiet = tickets_world.world(policies, 1, 1, FaultMix(sites=()), changes=0)
    sim = Simulation(0, quiet)
    sim.act(AGENT)  # the agent opens ticket 1: version 1 and projection job 1
    sim.step("w1", until="committed")  # the row is written (guarded: and the counts with it)
    sim.crash("w1")  # w1 dies before its ack; whatever it held in memory is gone
    sim.advance(policies.lease_s + 1)  # nobody hears from w1 again: its lease runs out
    sim.reap()  # the reaper hands job 1 back to the queue
    sim.drain("w1")  # the retry: its commit absorbs the recorded effect, its ack counts nothing
    return sim.finish()
