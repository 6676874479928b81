"""FM_016 dual write: the ticket is saved, its projection is never enqueued.

The tickets service (chapter 09) answers reads from a read model that a projection job
brings up to date after every change. Here a command is carried out the way many services
do it: save the row, then publish what changed, in a second transaction. The agent opens
ticket 1, the row commits, and the agent dies before it enqueues the projection. The
write model has the ticket; the read model never will, because the only record that the
change needs projecting was the agent's memory, and nothing retries a job nobody
enqueued. The guard is the transactional outbox: the ticket and its projection job
commit together, so a crash leaves both or neither.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation

META = Meta(
    id="FM_016",
    title="Dual write: the ticket is saved, its projection is never enqueued",
    lever="ticket_outbox",
    invariants=("INV_012",),
    summary="A command saves the ticket, then enqueues its projection in a second "
    "transaction; a crash between leaves a change the read model never receives.",
    marks=("fault.client_crash",),
    found_within=1,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)


def scenario(
    policies: Policies = GUARDED, jobs: int = 2, workers: int = 2, mix: FaultMix = tickets_world.MIX
) -> Scenario:
    """The tickets world: the agent opens `jobs` tickets and changes each three times while
    `workers` projectors keep the read model up and a reader reads it; every fault site,
    and the agent may die between its transactions."""
    return tickets_world.world(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    # One ticket, opened and never changed; one projector; no fault but the one scripted.
    quiet = tickets_world.world(policies, 1, 1, FaultMix(sites=()), changes=0)
    sim = Simulation(0, quiet)
    sim.act("agent")  # the agent opens ticket 1 (guarded: the ticket and its job, at once)
    sim.actors.crash_agent()  # the agent dies: whatever it had not yet written, it never will
    sim.drain("w1")  # w1 projects whatever was enqueued
    return sim.finish()
