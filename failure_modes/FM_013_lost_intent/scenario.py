"""FM_013 lost intent: the work starts before the intent is durable, and a crash loses it.

A customer places order 1001. The intent log (chapter 08) must hold that action before
anything follows from it; here the recording is written the other way round: the client
first enqueues the follow-up work (the projection, the sync to the outside target) for
the id the intent is about to get, and writes the intent afterwards. A worker picks the
sync up at once and the target receives the order. Then the client process dies before
its second transaction. The outside world has the order; the system of record has no
trace that the customer ever asked. The guard is the intent first: the intent, its event
and its jobs commit in one transaction, so a crash leaves all of them or none.
"""

from failure_modes.catalog import Meta
from runtime.faults import SITES, FaultMix
from runtime.intents import system
from runtime.intents.log import HANDLERS
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_013",
    title="Lost intent: the work starts before the intent is durable",
    lever="intent_first",
    invariants=("INV_010",),
    summary="The client enqueues an intent's work before writing the intent; a crash between "
    "leaves work, and an outside effect, for an intent the log never holds.",
    marks=("fault.client_crash",),
    found_within=1,
    sqlite_only="the intent log's SQL reads JSON with SQLite's json_extract",
)

ATTEMPTS = 12
"""A sync is worth retrying: with the intent log's 5, the crashes and lost answers of every
fault site now and then spend a sync's budget after its call applied (FM_002's residual
risk, INV_002), which is not this failure mode."""
MIX = FaultMix(sites=(*SITES, "client_crash"))
"""Every fault site, and the client dying between its transactions."""


def orders(count: int) -> tuple[tuple[str, dict[str, int]], ...]:
    return tuple(("order.placed", {"order": 1001 + n}) for n in range(count))


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = MIX
) -> Scenario:
    """The world the explorer searches: a client records `jobs` orders while `workers`
    workers project and sync them; every fault site, and the client may die between its
    transactions."""
    return Scenario(
        jobs=(),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=system.with_attempts(policies, ATTEMPTS),
        mix=mix,
        intents=orders(jobs),
        clients_record=True,
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = Simulation(0, scenario(policies, jobs=1, workers=1, mix=FaultMix(sites=())))
    sim.client_step()  # the client's first transaction (guarded: the whole intent)
    sim.drain("w1")  # w1 projects the order and syncs it to the outside target
    sim.crash_client()  # the client dies: whatever it had not written, it never will
    sim.drain("w1")  # nothing is left for w1
    return sim.finish()
