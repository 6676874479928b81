"""FM_008 duplicate submission: the client retries its submit, the queue accepts the same
order twice, and both jobs award the points.

The shop's checkout submits a job for order 1001 with idempotency key `order-1001`. The
queue accepts it, but the answer is lost on the way back (a timeout), so the checkout does
what a careful client does: it submits again, with the same key. Unless the queue looks the
key up, that is a second job for the same order. Nothing downstream can tell the two jobs
apart from two orders: each runs once, each succeeds, and the customer is credited twice.
The guard is submit idempotency: the key is stored with the job, and a submit that brings a
known key gets the first job back instead of a new one.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry.scenario import HANDLERS, order
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_008",
    title="Duplicate submission",
    lever="submit_idempotency",
    invariants=("INV_001",),
    summary="A client retries a submit that timed out; the queue accepts a second job for "
    "the same order, and both award the points.",
    marks=("submit.absorbed",),
    found_within=2,
)

WORKERS = ("w1",)
"""One worker is enough: the duplicate is born at the front door, not in a retry."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders (the loyalty worker's, as in FM_001),
    `workers` workers, every fault site. The `duplicate_delivery` site delivers a client's
    submit twice, with the same idempotency key, as a client that timed out and retried."""
    return Scenario(
        jobs=tuple(order(1001 + n) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=policies,
        mix=mix,
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    first = order(1001)  # order 1001, 50 points, idempotency key `order-1001`
    world = Scenario(jobs=(first,), handlers=HANDLERS, workers=WORKERS, policies=policies)
    sim = Simulation(0, world)  # submits world.jobs: the checkout's first submit, job 1
    # The queue's answer never reaches the checkout, so it submits the same order again,
    # with the same key: the client's retry, which the queue has to recognise.
    sim.queue.submit(first.kind, dict(first.payload), idempotency_key=first.key)
    sim.drain("w1")  # w1 runs whatever the queue holds: one job, or two
    return sim.finish()
