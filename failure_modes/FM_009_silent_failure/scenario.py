"""FM_009 silent failure: an error is caught and dropped, and the job is marked done.

The receipt mailer sends one mail per order. Its work is wrapped in "catch every exception,
log it, carry on". The mail server refuses the first connection; the ConnectionError is
caught, the attempt goes on to commit and acknowledge with nothing sent, and the job is
SUCCEEDED. Nothing retries it, no attempt is FAILED, no event carries an error: the only
trace is a log line. The guard is failure capture: a handler that raises fails its
attempt through the queue, the error becomes state (on the execution, in the job's
`last_error`, in a `job.retry_scheduled` event), and the retry sends the mail.
"""

from failure_modes.catalog import Meta
from runtime.effects import Effect
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_009",
    title="Silent failure: an error swallowed, the job marked done",
    lever="failure_capture",
    invariants=("INV_004",),
    summary="A handler's error is caught and dropped; the job is SUCCEEDED with nothing done.",
    marks=("retry.scheduled",),
    found_within=1,
)

WORKERS = ("w1",)
REFUSED = "mail server refused the connection"


def send_receipt(job: Job) -> Effect:
    """Mail the receipt. The mail server refuses a job's first connection (`job.attempts`
    counts this attempt too), as a server under load or mid-restart does."""
    if job.attempts == 1:
        raise ConnectionError(REFUSED)
    order = job.payload["order"]
    return Effect(sink="mail", key=f"receipt-{order}", detail={"to": job.payload["to"]})


HANDLERS = {"send_receipt": send_receipt}


def receipt(number: int) -> JobSpec:
    return JobSpec(
        "send_receipt",
        {"order": number, "to": f"customer-{number}@example.com"},
        key=f"receipt-{number}",
    )


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` receipts, `workers` workers, every fault site.
    Every receipt's first attempt meets the refused connection."""
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
    sim.drain("w1")  # attempt 1: the mail server refuses the connection
    sim.advance(policies.retry_delay_s_max)  # the longest backoff there is: any retry is due
    sim.drain("w1")  # guarded, attempt 2 sends the receipt; unguarded, nothing is left to run
    return sim.finish()
