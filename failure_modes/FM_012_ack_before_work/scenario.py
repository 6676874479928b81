"""FM_012 ack before work: the job is acknowledged on receipt, the worker dies before the work.

The receipts worker puts a receipt for each order in the outbox, which the mail relay
sends. To keep the queue short it acknowledges each job the moment it receives it and
does the work afterwards. If it dies in between, the queue holds a SUCCEEDED job whose
receipt was never written, and nothing will ever run it again: delivery has become
at-most-once. The guard is to acknowledge only after the work is committed; a crash before
that leaves the job RUNNING on a lease, and the reaper hands it to another worker.
"""

from failure_modes.catalog import Meta
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_012",
    title="Acknowledged before the work",
    lever="ack_after_commit",
    invariants=("INV_004",),
    summary="A worker acks a job on receipt and dies before the work: SUCCEEDED, never done, "
    "never retried.",
    marks=("reaper.rescued",),
    found_within=1,
)

WORKERS = ("w1", "w2")


def send_receipt(job: Job) -> Effect:
    order = job.payload["order"]
    return Effect(sink="outbox", key=f"receipt-{order}", detail={"to": job.payload["email"]})


HANDLERS = {"send_receipt": send_receipt}


def receipt(number: int) -> JobSpec:
    return JobSpec(
        "send_receipt",
        {"order": number, "email": f"customer-{number}@example.com"},
        key=f"receipt-{number}",
    )


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` receipts, `workers` workers, every fault site."""
    return Scenario(
        jobs=tuple(receipt(1001 + n) for n in range(jobs)),
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
        0, Scenario(jobs=(receipt(1001),), handlers=HANDLERS, workers=WORKERS, policies=policies)
    )
    sim.step("w1", until="started")  # w1 receives order 1001's job (unguarded: and acks it)
    sim.crash("w1")  # ...and dies before the receipt is written
    sim.advance(2 * policies.lease_s)  # w1's lease ran out long ago
    sim.reap()  # guarded: the job is RUNNING on that lease, so it is rescued; unguarded:
    # the job is SUCCEEDED, so the reaper sees nothing to rescue
    sim.drain("w2")  # w2 runs whatever is ready: the rescued job, or nothing at all
    return sim.finish()
