"""FM_002 external effect replayed: the card is charged, the worker never commits, the retry
charges it again.

The checkout worker charges each order's card through a payment provider. The charge lands
in the provider's system, not in our database, so no transaction of ours can hold it: the
worker calls the provider at `effect_applied`, then commits. If it dies in between (or the
provider's answer is lost on the way back), the queue only knows the job never finished:
the lease expires, the reaper hands the job to another worker, and that worker calls the
provider again. The guard is the idempotency key: every call carries the charge's key
(`charge-1001`), and the provider answers a repeat with the first charge instead of
making a second one.
"""

import dataclasses

from failure_modes.catalog import Meta
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_002",
    title="External effect replayed",
    lever="external_idempotency",
    invariants=("INV_001", "INV_002"),
    summary="The provider charges a card, the attempt never commits (a crash, a lost answer); "
    "the retry charges it again.",
    marks=("effect.absorbed",),
    found_within=2,
)

WORKERS = ("w1", "w2")
ATTEMPTS = 12
"""A charge is worth retrying: the checkout gives each one 12 attempts. With the default 3,
a run whose workers keep dying can spend them all after the provider charged, and the job
ends DEAD with a charge no attempt confirmed (INV_002). That is the residual risk no
idempotency key removes (spec.md, Prevention); the prevent tests show it on purpose."""


def checkout(policies: Policies) -> Policies:
    """`policies` as the checkout runs them: the same guards, ATTEMPTS attempts a charge."""
    return dataclasses.replace(policies, attempts_max=ATTEMPTS)


def charge(job: Job) -> Effect:
    """Charge the order's card: an external effect, keyed by the order it pays for."""
    order = job.payload["order"]
    return Effect(
        sink="payments",
        key=f"charge-{order}",
        detail={"amount_cents": job.payload["amount_cents"]},
        external=True,
    )


HANDLERS = {"charge": charge}


def order(number: int, amount_cents: int = 4999) -> JobSpec:
    """The checkout's job for one order: charge its card (49.99 unless told otherwise)."""
    payload = {"order": number, "amount_cents": amount_cents}
    return JobSpec("charge", payload, key=f"charge-{number}")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders charged through the payment provider,
    `workers` workers, every fault site (lost answers of external calls among them)."""
    return Scenario(
        jobs=tuple(order(1001 + n) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=checkout(policies),
        mix=mix,
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    world = Scenario(
        jobs=(order(1001),), handlers=HANDLERS, workers=WORKERS, policies=checkout(policies)
    )
    sim = Simulation(0, world)
    sim.step("w1", until="effect_applied")  # the provider has charged the card...
    sim.crash("w1")  # ...and w1 dies before it commits: we have no record of the charge
    sim.advance(policies.lease_s)  # nobody hears from w1 again: its lease runs out
    sim.reap()  # the reaper hands job 1 back to the queue
    sim.drain("w2")  # w2 runs the retry to the end, calling the provider again
    return sim.finish()
