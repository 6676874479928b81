"""FM_006 retry storm: a dependency comes back, and every job that failed retries at once.

The receipt mailer sends each order's receipt through a mail provider. The provider is
down for the first 900 ms, so the whole batch of receipts fails together. Once back up it
can send 2 mails in any 50 ms and refuses the rest as overloaded. Without jitter every
failed job computes the same backoff, so the batch retries together: twelve calls in one
instant, two served, ten refused, and those ten retry together again, and again. The
provider states what it can take: at most 8 retries in any 50 ms. The guard is full
jitter: each retry's delay is drawn at random up to the backoff's ceiling, so retries
that failed together arrive spread out, and most of them are served the first time.
"""

import dataclasses

from failure_modes.catalog import Meta
from runtime.dependency import Dependency
from runtime.effects import Effect
from runtime.faults import SITES, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.queue import Job
from runtime.sim import JobSpec, RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_006",
    title="Retry storm: every failed job retries at the same instant",
    lever="backoff_jitter",
    invariants=("INV_009",),
    summary="A dependency is down and the whole batch fails together; with no jitter every "
    "job retries at the same instants and the recovered dependency is flooded.",
    marks=("dependency.refused", "retry.scheduled"),
    found_within=1,
    world=(12, 4),
)

MAIL = Dependency(sink="mail", down=(0.0, 0.9), capacity=2, window_s=0.05, retries_max=8)
"""The mail provider: down for the first 900 ms, then 2 mails served in any 50 ms; it
states that it can take at most 8 retries in any 50 ms."""
ATTEMPTS = 10
"""A receipt is worth retrying: each gets 10 attempts, so a storm costs calls and time
before it costs receipts."""
BATCH, WORKERS = 12, 4
"""The scripted schedule: a batch of 12 receipts, 4 workers."""
STEP_MS_MAX = 1
"""The mailer's workers are fast: an explored step takes 0 or 1 ms."""
MIX = FaultMix(
    sites=tuple(site for site in SITES if site != "clock_jump" and not site.startswith("pause@"))
)
"""Every fault site but two, each for a reason. No clock steps: INV_009 measures windows
on the log's clock, and a clock that steps back would fold two seconds into one window
(FM_010's subject). No pauses: when every worker of the pool stalls at once, the retries
that fall due meanwhile wait in the queue, however well jittered, and the first worker
back drains them in one burst. That is a backlog, not a retry storm, and jitter cannot
spread what the queue holds back; its guard is a limit on the rate of retries."""


def mailer(policies: Policies) -> Policies:
    """`policies` as the receipt mailer runs them: the same guards, ATTEMPTS attempts."""
    return dataclasses.replace(policies, attempts_max=ATTEMPTS)


def send_receipt(job: Job) -> Effect:
    """Mail the order's receipt through the provider, once per order."""
    order = job.payload["order"]
    return Effect(sink=MAIL.sink, key=f"receipt-{order}", detail={"order": order}, external=True)


HANDLERS = {"receipt": send_receipt}


def receipt(number: int) -> JobSpec:
    return JobSpec("receipt", {"order": number}, key=f"receipt-{number}")


def scenario(
    policies: Policies = GUARDED, jobs: int = BATCH, workers: int = WORKERS, mix: FaultMix = MIX
) -> Scenario:
    """The world the explorer searches: a batch of `jobs` receipts submitted together,
    `workers` workers, the provider's outage, and every fault site but pauses and clock
    steps (MIX)."""
    return Scenario(
        jobs=tuple(receipt(1001 + n) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=mailer(policies),
        mix=mix,
        dependencies=(MAIL,),
        step_ms_max=STEP_MS_MAX,
    )


TICK_S = 0.001
"""In the scripted schedule each worker takes one step per millisecond."""


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`.

    Scripted: the batch of 12 receipts is submitted at 0.000 and the 4 workers take turns,
    one step each per millisecond; when none has anything to do, the clock moves to the
    next retry. No fault but the outage."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    world = scenario(policies, mix=FaultMix(sites=()))
    sim = Simulation(0, world)
    while True:
        steps = [sim.step(worker) for worker in world.workers]
        if any(step is not None for step in steps):
            sim.advance(TICK_S)
            continue
        deadline = sim.queue.next_deadline()
        if deadline is None:
            return sim.finish()
        sim.advance(deadline - sim.clock.now())
