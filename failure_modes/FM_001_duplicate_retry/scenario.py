"""FM_001 duplicate retry: the effect lands, the worker dies before committing, the retry
applies it again.

The loyalty worker awards points for each order. It writes the points to the ledger, then
records that the job is done. If it dies between the two, the queue only knows the job
never finished: the lease expires, the reaper hands the job to another worker, and the
customer is credited twice. The guard is the commit boundary: the ledger entry is written
in the same transaction as the commit, keyed by order, so there is no "between".
"""

import random

from failure_modes.catalog import Meta
from runtime.effects import Effect
from runtime.faults import CrashAfter, FaultPlan
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation
from runtime.worker import STEPS

META = Meta(
    id="FM_001",
    title="Duplicate effect on retry",
    lever="commit_boundary",
    invariants=("INV_001", "INV_002"),
    summary="A worker applies the effect, dies before committing; the retry applies it again.",
)

WORKERS = ("w1", "w2")


def award_points(job: Job) -> Effect:
    order = job.payload["order"]
    return Effect(sink="ledger", key=f"order-{order}", detail={"points": job.payload["points"]})


HANDLERS = {"award_points": award_points}


def order(number: int, points: int = 50) -> JobSpec:
    return JobSpec("award_points", {"order": number, "points": points})


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one seeded variation of it."""
    if seed is not None:
        return explore(policies, seed)
    sim = Simulation(
        0, Scenario(jobs=(order(1001),), handlers=HANDLERS, workers=WORKERS, policies=policies)
    )
    sim.step("w1", until="effect_applied")  # the points are computed (and, unguarded, written)
    sim.crash("w1")  # ...and w1 dies before it commits
    sim.advance(policies.lease_s)  # nobody hears from w1 again: its lease runs out
    sim.reap()  # the reaper hands job 1 back to the queue
    sim.drain("w2")  # w2 runs the retry to the end
    return sim.finish()


def explore(policies: Policies, seed: int) -> RunResult:
    """A seeded variation: 1-3 orders, two workers in a random interleaving, and one crash
    after a random step of a random worker's first or second attempt."""
    rng = random.Random(seed)
    jobs = tuple(
        order(1001 + n, points=rng.choice((10, 50, 100))) for n in range(rng.randint(1, 3))
    )
    crash = CrashAfter(
        step=rng.choice(STEPS), worker=rng.choice(WORKERS), occurrence=rng.randint(1, 2)
    )
    scenario = Scenario(
        jobs=jobs, handlers=HANDLERS, workers=WORKERS, policies=policies, faults=FaultPlan((crash,))
    )
    return Simulation(seed, scenario).run()
