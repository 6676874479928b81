"""FM_022 a corrupt row survives a catch-up rebuild: the recovery trusts what it recovers.

The tickets service (chapter 09) reconciles its read model now and then: it compares
every row with what projecting its ticket gives, and a row at its ticket's current version
that differs is damage (a bad sector, a hand-written UPDATE, a restore gone wrong); a row
merely behind is lag, and left alone. Damage found, the remedy is the standard one for
derived data: rebuild it by replay from the write model. The tempting rebuild is a
catch-up, the optimisation every incremental refresh reaches for: re-project only the
tickets whose row is missing or behind, and keep every row whose version is current. The
damage did not touch the version, so the catch-up keeps the damaged row, swaps it into the
new table, and records a rebuild that claims to have mended it. The guard rebuilds every
ticket from the write model, whatever the live table holds.
"""

from failure_modes import tickets_world
from failure_modes.catalog import Meta
from runtime.faults import SITES, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation
from runtime.tickets.world import AGENT, REBUILDER

META = Meta(
    id="FM_022",
    title="A corrupt row survives a catch-up rebuild",
    lever="full_rebuild",
    invariants=("INV_012",),
    summary="Reconciliation finds a damaged read-model row and a rebuild is run to mend it; "
    "the rebuild re-projects only missing or stale rows, keeps the damaged one because its "
    "version is current, and the read model stays wrong.",
    marks=("views.suspect", "rebuild.swapped", "fault.view_corrupt"),
    found_within=16,
    world=(2, 2),
    sqlite_only="the tickets service's SQL uses SQLite's JSON functions and schema catalog",
)

REBUILDS = 2
"""Two reconciliations a run, each followed by a rebuild when it finds damage."""
MIX = FaultMix(sites=(*SITES, "client_crash", "view_corrupt"))
"""Every fault site, the agent dying between its transactions, and a read-model row
garbled just before a reconciliation looks (runtime.tickets.world, CORRUPT_FIRING)."""
SCRIPTED_MIX = FaultMix(sites=("view_corrupt",), activation=1.0)
"""The scripted schedule's only fault site, certainly switched on."""
SCRIPTED_TAPE = (1, 1)
"""The scripted schedule's two decisions: switch `view_corrupt` on, and fire it when the
rebuilder reconciles. The second is a coin (CORRUPT_FIRING, one half), and seed 0 draws
tails; answering from a tape says which side the schedule needs instead of hunting for a
seed that happens to give it. With one row in the read model, which row to garble is no
decision at all."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 2, workers: int = 2, mix: FaultMix = MIX
) -> Scenario:
    """The world the explorer searches (failure_modes.tickets_world): the agent opens `jobs`
    tickets and changes each three times, `workers` projectors, a reader, and a rebuilder
    that, once everything is sent, reconciles the read model twice and rebuilds when it
    finds damage; every fault site, the agent's crash and the corrupted row."""
    return tickets_world.world(policies, jobs, workers, mix, rebuilds=REBUILDS, reconcile=True)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    # One ticket, opened and never changed, one projector, no reader; one reconciliation.
    world = tickets_world.world(
        policies, 1, 1, SCRIPTED_MIX, changes=0, reads=0, rebuilds=1, reconcile=True
    )
    sim = Simulation(0, world, tape=SCRIPTED_TAPE)
    sim.act(AGENT)  # the agent opens ticket 1, at version 1, with its projection job
    sim.drain("w1")  # w1 projects it: the read model holds ticket 1 at version 1, right
    sim.act(REBUILDER)  # ticket 1's preview is garbled, its version untouched, and the
    # reconciliation finds it: at its ticket's version, and wrong (`found_damage`)
    while sim.act(REBUILDER) != "swapped":  # the rebuild run to mend it. Baseline fills
        pass  # only rows missing or behind; ticket 1's is neither, and the swap keeps it
    return sim.finish()
