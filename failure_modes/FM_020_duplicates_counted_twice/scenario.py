"""FM_020 duplicates counted twice: a projector that counts by events double-counts a replayed one.

The read model keeps status counts beside its rows: how many tickets are open, in
progress, closed. There are two ways to keep such a counter. By the row: when a
projection writes a ticket's row, move the counts by what the row changed (its old status
down, its new one up), in the same transaction. Or by the event: each change says which
status it moved the ticket from and to, so add that. Counting by events looks the more
natural (it is what an event is for) and gives the same numbers as long as every event is
counted exactly once. The runtime never applies one job's effect twice, but an event has a
second road to the read model: a rebuild by replay, which projects the write model and
recounts from the rows. The projection jobs of versions the rebuild already covered then
arrive; the version guard skips their rows, and an event counter counts them anyway. The
guard is to count by the row: a delivery the row skips counts nothing, so the counter is
exactly as idempotent as the row it counts.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT, REBUILDER

META = Meta(
    id="FM_020",
    title="Duplicate events counted twice: a projector that counts by events double-counts a "
    "replayed one",
    lever="count_on_write",
    invariants=("INV_012",),
    summary="The status counts move by each projection's event, written or not; a rebuild "
    "replays versions whose jobs then arrive, are skipped, and are counted a second time.",
    marks=("projection.skipped", "rebuild.swapped"),
    found_within=2,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)

REBUILDS = 1
"""One rebuild during the run. Without it nothing reaches the read model twice, and event
counting breaks none of the first 500 baseline seeds; with it, 454 of them."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 2, workers: int = 2, mix: FaultMix = tickets_world.MIX
) -> Scenario:
    """The world the explorer searches (failure_modes.tickets_world): the agent opens `jobs`
    tickets and changes each three times, `workers` projectors, a reader reading as they go,
    and a rebuilder that rebuilds the read model once during the run; every fault site."""
    return tickets_world.world(policies, jobs, workers, mix, rebuilds=REBUILDS)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    quiet = FaultMix(sites=())  # no fault site: whatever goes wrong, the schedule did it
    # One ticket, opened and moved once; one projector; one rebuild.
    world = tickets_world.world(policies, 1, 1, quiet, changes=1, rebuilds=1)
    sim = Simulation(0, world)
    sim.act(AGENT)  # the agent opens ticket 1: version 1, projection job 1 ([None, open])
    sim.act(AGENT)  # and moves it in progress: version 2, job 2 ([open, in_progress])
    # Before any projection, the rebuild replays the write model to the end: the row at
    # version 2, and the counts recounted from the rows: 1 in_progress.
    while sim.act(REBUILDER) != "swapped":
        pass
    # w1 delivers both jobs. Each row is already there at version 2, so both writes are
    # skipped; baseline counts each job's move anyway, events the rebuild already counted.
    sim.drain("w1")
    return sim.finish()
