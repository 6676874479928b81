"""FM_001 duplicate retry: the effect lands, the worker dies before committing, the retry
applies it again.

The loyalty worker awards points for each order. It writes the points to the ledger, then
records that the job is done. If it dies between the two, the queue only knows the job
never finished: the lease expires, the reaper hands the job to another worker, and the
customer is credited twice. The guard is the commit boundary: the ledger entry is written
in the same transaction as the commit, keyed by order, so there is no "between".
"""

from failure_modes.catalog import Meta
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_001",
    title="Duplicate effect on retry",
    lever="commit_boundary",
    invariants=("INV_001", "INV_002"),
    summary="A worker applies the effect, dies before committing; the retry applies it again.",
    marks=("effect.absorbed",),
    found_within=10,
)

WORKERS = ("w1", "w2")


def award_points(job: Job) -> Effect:
    order = job.payload["order"]
    return Effect(sink="ledger", key=f"order-{order}", detail={"points": job.payload["points"]})


HANDLERS = {"award_points": award_points}


def order(number: int, points: int = 50) -> JobSpec:
    return JobSpec("award_points", {"order": number, "points": points}, key=f"order-{number}")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders, `workers` workers, every fault site."""
    return Scenario(
        jobs=tuple(order(1001 + n) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=policies,
        mix=mix,
    )


def one_order(policies: Policies = GUARDED) -> Simulation:
    """Order 1001 and workers w1 and w2 at 0.000, for a schedule driven step by step: the
    start of this failure mode's scripted schedule, and of the others set in its world."""
    return Simulation(
        0, Scenario(jobs=(order(1001),), handlers=HANDLERS, workers=WORKERS, policies=policies)
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = one_order(policies)
    sim.step("w1", until="effect_applied")  # the points are computed (and, unguarded, written)
    sim.crash("w1")  # ...and w1 dies before it commits
    sim.advance(policies.lease_s)  # nobody hears from w1 again: its lease runs out
    sim.reap()  # the reaper hands job 1 back to the queue
    sim.drain("w2")  # w2 runs the retry to the end
    return sim.finish()
