"""FM_011 lost update: two read-modify-writes of one balance, and the second erases the first.

The loyalty worker credits each order's points to the customer's wallet, a balance in a
row: it reads the balance, adds the order's points and writes the sum back. Two orders of
one customer are paid out at the same moment by two workers. Both read 120, one writes 170,
the other writes 150 over it: the 50 points of order 1001 are gone, though both jobs
SUCCEEDED and both credits are on record. The guard is compare-and-set: the write goes
through only if the balance is still at the version it read; otherwise the attempt fails
with a conflict and its retry reads the balance afresh.
"""

from failure_modes.catalog import Meta
from runtime import accounts
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_011",
    title="Lost update: two read-modify-writes of one balance",
    lever="compare_and_set",
    invariants=("INV_008",),
    summary="Two workers read the same balance, each adds its credit and writes the sum "
    "back; the second write erases the first.",
    marks=("cas.conflict",),
    found_within=1,
)

WORKERS = ("w1", "w2")
WALLET = "acct-1"
OPENING = 120
"""The wallet's balance before the two orders are paid out: points from earlier orders."""
POINTS = (50, 30, 20)
"""The points of orders 1001, 1002, 1003, ...: distinct, so a lost credit is identifiable."""


def award(job: Job) -> Effect:
    """Credit the order's points to the customer's wallet, once per order."""
    payload = job.payload
    return accounts.credit(payload["account"], payload["points"], f"points-{payload['order']}")


HANDLERS = {"award": award}


def order(number: int, points: int) -> JobSpec:
    """The loyalty worker's job for one order: credit its points to the wallet."""
    payload = {"order": number, "account": WALLET, "points": points}
    return JobSpec("award", payload, key=f"points-{number}")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders of one customer, all credited to one
    wallet, `workers` workers, every fault site."""
    return Scenario(
        jobs=tuple(order(1001 + n, POINTS[n % len(POINTS)]) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=policies,
        mix=mix,
        accounts=((WALLET, OPENING),),
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    world = Scenario(
        jobs=(order(1001, 50), order(1002, 30)),
        handlers=HANDLERS,
        workers=WORKERS,
        policies=policies,
        accounts=((WALLET, OPENING),),
    )
    sim = Simulation(0, world)
    sim.step("w1", until="effect_applied")  # w1 takes order 1001 and reads 120 at version 0
    sim.step("w2", until="effect_applied")  # w2 takes order 1002 and reads 120 too
    sim.drain("w1")  # w1 commits 120 + 50 = 170 and acks
    sim.drain("w2")  # w2 commits 120 + 30 = 150: over w1's write, or refused (guarded)
    sim.advance(policies.retry_delay_s_base)  # the first backoff is at most this long
    sim.drain("w2")  # guarded: w2 retries order 1002, reads 170 afresh and writes 200
    return sim.finish()
