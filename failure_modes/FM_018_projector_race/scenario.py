"""FM_018 projector race: a version check read before the write lets an older projection win.

An agent opens ticket 1 and moves it to in progress: versions 1 and 2, each with the job
that projects it into the read model. Two projectors take one job each. The projector of
version 1 checks the read model as it begins: no row yet, so its version is newer, and it
goes on. The other projector writes version 2 and is done. Then the first one commits, on
the strength of a check that stopped being true a moment ago, and writes version 1 over
version 2. A reader who saw the ticket in progress now sees it open again, and nothing
newer is on its way to put it right. The version check was there all along; it was just
not part of the write. The guard makes it so: one statement that the database decides,
`INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE excluded.version > ticket_views.version`.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT, READER

META = Meta(
    id="FM_018",
    title="Projector race: a version check read before the write lets an older projection win",
    lever="conditional_write",
    invariants=("INV_012",),
    summary="A projector checks the row's version when it starts and writes at its commit; "
    "another projector commits a newer version in between, and the older one overwrites it.",
    marks=("projection.skipped",),
    found_within=7,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)


def scenario(
    policies: Policies = GUARDED, jobs: int = 2, workers: int = 2, mix: FaultMix = tickets_world.MIX
) -> Scenario:
    """The tickets service's explored world (failure_modes.tickets_world): the agent opens
    `jobs` tickets and changes each three times while `workers` projectors project them and
    a reader reads; every fault site, and the agent may die between its commands."""
    return tickets_world.world(policies, jobs, workers, mix)


def one_ticket(policies: Policies = GUARDED) -> Scenario:
    """The scripted world: one ticket, opened and moved once (two versions, two jobs), two
    projectors, a reader with reads to spare, and no fault site: whatever goes wrong, the
    schedule did it."""
    return tickets_world.world(policies, 1, 2, FaultMix(sites=()), changes=1, reads=2)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = Simulation(0, one_ticket(policies))
    sim.act(AGENT)  # the agent opens ticket 1: version 1, and job 1 to project it
    sim.act(AGENT)  # and moves it to in progress: version 2, and job 2
    sim.step("w1", until="effect_applied")  # w1 takes job 1 and checks the row: none yet
    sim.drain("w2")  # w2 takes job 2 and projects version 2, to the end
    sim.act(READER)  # the reader sees ticket 1 at version 2, in progress
    sim.drain("w1")  # w1 commits version 1 on its old check (guarded: the write refuses it)
    sim.act(READER)  # and the reader looks again
    return sim.finish()
