"""FM_005 poison job: a job that can never succeed is retried forever.

Next to the loyalty orders (FM_001's world) sits one refund that an old client sent with
the order under `order_id` instead of `order`. Its handler raises KeyError every time, and
nothing about trying again will change that. Without a retry budget the queue schedules
attempt after attempt: the job never ends, it takes a worker every time its backoff runs
out, and its error history grows without bound. The guard is the retry budget: after
`attempts_max` failed attempts the job goes DEAD with every error on record, and stays
there until an operator, having fixed the cause, redrives it.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry.scenario import award_points, order
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_005",
    title="Poison job retried forever",
    lever="retry_budget",
    invariants=("INV_006", "INV_004"),
    summary="A job whose handler fails every time is retried without end and never finishes.",
    marks=("job.dead",),
    found_within=1,
)

WORKERS = ("w1", "w2")
POISON = 1
"""The refund is submitted first, so it is job 1."""


def refund_points(job: Job) -> Effect:
    order = job.payload["order"]  # KeyError: 'order' when the client named it `order_id`
    return Effect(sink="ledger", key=f"refund-{order}", detail={"points": -job.payload["points"]})


HANDLERS = {"award_points": award_points, "refund_points": refund_points}


def poison_refund(number: int = 1001, points: int = 50) -> JobSpec:
    """A refund in an old client's format: the order is under `order_id`, so it can never run."""
    return JobSpec("refund_points", {"order_id": number, "points": points}, key=f"refund-{number}")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` jobs in all, the poison refund first and
    then orders, on `workers` workers with every fault site. Without the lever a run
    never goes quiet: it ends when its steps run out (100 a job)."""
    return Scenario(
        jobs=(poison_refund(), *(order(1001 + n) for n in range(jobs - 1))),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=policies,
        mix=mix,
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = Simulation(
        0,
        Scenario(
            jobs=(poison_refund(), order(1001)),
            handlers=HANDLERS,
            workers=WORKERS,
            policies=policies,
        ),
    )
    sim.step("w1", until="failed")  # attempt 1 of the refund: KeyError; a retry is scheduled
    sim.drain("w2")  # meanwhile w2 awards order 1001's points: other work goes on
    for _ in range(policies.attempts_max):  # attempts 2 and 3, then a 4th past the budget
        sim.advance(policies.retry_delay_s_max)  # wait out the longest backoff there is
        sim.step("w1", until="failed")  # the same KeyError; once DEAD, nothing to lease
    return sim.finish()  # the final check: every accepted job must have ended
