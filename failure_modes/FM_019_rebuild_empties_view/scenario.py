"""FM_019 rebuild empties the view: readers see tickets vanish while the read model is rebuilt.

The tickets service (chapter 09) answers reads from a read model derived from its write
model, and rebuilds that model by replay whenever it is suspect: a bug fixed in the
projector, a row shape changed, a row found corrupt. The read model is disposable, so the
obvious rebuild throws it away and makes it again: empty the table, fill it from the write
model a batch at a time, recount. Where it ends is right; on the way there the service
goes on answering. A support agent who just opened ticket 1 refreshes the page and
is told there is no such ticket; a list comes back with half the tickets. The guard fills
a shadow table instead and swaps it in whole, in one transaction: readers see the old
table or the new one, never the work in between.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT, READER, REBUILDER

META = Meta(
    id="FM_019",
    title="Rebuild exposes an empty view: readers see tickets vanish while the read model is "
    "rebuilt",
    lever="shadow_swap",
    invariants=("INV_012",),
    summary="A rebuild of the read model empties the live table and fills it again; a reader "
    "in between finds a ticket it has just read missing.",
    marks=("rebuild.swapped", "read.during_rebuild"),
    found_within=3,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)

REBUILDS = 2
READS = 2
"""Two rebuilds, two reads a command: the break needs a read inside a rebuild, and with one
of each only 14 of the first 500 baseline seeds have one that shows; with two of each,
203 do."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 2, workers: int = 2, mix: FaultMix = tickets_world.MIX
) -> Scenario:
    """The world the explorer searches (failure_modes.tickets_world): the agent opens `jobs`
    tickets and changes each three times, `workers` projectors, a reader reading as they go,
    and a rebuilder that rebuilds the read model twice during the run; every fault site."""
    return tickets_world.world(policies, jobs, workers, mix, rebuilds=REBUILDS, reads=READS)


def quiet(
    policies: Policies, tickets: int = 1, *, changes: int = 0, workers: int = 1
) -> Simulation:
    """A scripted world: the agent opens `tickets` tickets (each changed `changes` times),
    `workers` projectors, a reader with two reads a command, one rebuild; no fault site, so
    whatever goes wrong, the schedule did it."""
    mix = FaultMix(sites=())
    world = tickets_world.world(
        policies, tickets, workers, mix, changes=changes, reads=2, rebuilds=1
    )
    return Simulation(0, world)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = quiet(policies)  # one ticket, never changed: one command, so two reads
    sim.act(AGENT)  # the agent opens ticket 1, at version 1, with its projection job
    sim.drain("w1")  # w1 projects it: the read model holds ticket 1 at version 1
    sim.act(READER)  # the reader reads ticket 1: version 1
    sim.act(REBUILDER)  # the rebuild's first step: baseline empties the table, guarded
    # only creates the shadow table it will fill
    sim.act(READER)  # the reader reads ticket 1 again (baseline: there is no row)
    while sim.act(REBUILDER) != "swapped":  # it fills, a ticket a step, and swaps
        pass
    return sim.finish()
