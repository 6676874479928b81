"""FM_014 derived data doubled: a rebuild adds to a derived view instead of replacing it.

The intent log (chapter 08) syncs orders to an outside target, and an operator keeps the
failure clusters fresh by rebuilding them now and then. The target is down for the first
minute, so the batch's first syncs fail, and the operator rebuilds: one cluster, three
failures. The retries fail too, and the operator rebuilds again. The rebuild computes the
cluster afresh (six failures) but, written as an upsert that adds, stores nine: the
failures it had already counted are counted again. Every rebuild makes it worse, and
every alert read from the view is wrong. The guard replaces the table whole, in one
transaction, with the fresh computation.
"""

from failure_modes.catalog import Meta
from runtime.dependency import Dependency
from runtime.faults import NO_MIX, FaultMix
from runtime.intents import system
from runtime.intents.log import HANDLERS, SYNC_TARGET
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_014",
    title="Derived data doubled: a rebuild adds instead of replacing",
    lever="replace_derived",
    invariants=("INV_011",),
    summary="A rebuild of the failure clusters upserts its counts onto the stored ones; "
    "failures it had counted before are counted again.",
    marks=("derived.replaced",),
    found_within=2,
    sqlite_only="the intent log's SQL reads JSON with SQLite's json_extract",
)

ATTEMPTS = 12
"""A sync is worth retrying: against a target that fails half its calls, 12 attempts send a
sync to the dead letters once in 4,096 syncs, where the intent log's 5 would send one in
32. The views count the failures either way; the budget keeps the runs about them."""
FLAKY = Dependency(SYNC_TARGET, (0.0, 0.0), 1_000_000, 1.0, 1_000_000, fail_rate=0.5)
"""The explored target: up, failing half of its calls, at random (the run's tape)."""
DOWN_FOR_A_MINUTE = Dependency(SYNC_TARGET, (0.0, 60.0), 1_000_000, 1.0, 1_000_000)
"""The scripted target: down for the first minute, then reliable."""
ORDERS = 3


def world(
    policies: Policies, intents: int, workers: int, target: Dependency, mix: FaultMix
) -> Scenario:
    return Scenario(
        jobs=(),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=system.with_attempts(policies, ATTEMPTS),
        mix=mix,
        dependencies=(target,),
        intents=tuple(("order.placed", {"order": 1001 + n}) for n in range(intents)),
        rebuild_views=True,
    )


def scenario(
    policies: Policies = GUARDED, jobs: int = ORDERS, workers: int = 2, mix: FaultMix = NO_MIX
) -> Scenario:
    """The world the explorer searches: `jobs` orders recorded, synced to a target that
    fails half its calls, and an operator who rebuilds the failure views whenever new
    failures were logged. No fault sites: the failures this needs come from the target,
    and the sites test guards this failure mode does not turn off."""
    return world(policies, jobs, workers, FLAKY, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = Simulation(0, world(policies, ORDERS, 1, DOWN_FOR_A_MINUTE, NO_MIX))
    sim.drain("w1")  # three projections done; three syncs refused: the target is down
    sim.rebuild()  # the operator: one cluster, three failures
    sim.advance(system.POLICIES.retry_schedule_s[0])  # every first retry is due by now
    sim.drain("w1")  # the target is still down: three more failures
    sim.rebuild()  # the operator again: six failures, stored as six (or as 3 + 6)
    sim.advance(60.0)  # the target is back, and every second retry is due
    sim.drain("w1")  # the three syncs go through
    sim.rebuild()  # nothing new failed: the view is rebuilt as it was
    return sim.finish()
