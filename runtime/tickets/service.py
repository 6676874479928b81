"""The tickets service's settings and its projector: what `fmlab serve` and `fmlab project`
run.

The projector is the runtime's own worker with the projection handler: leases, retries,
backoff and dead letters all come from the queue. `project_until_quiet` runs it until
nothing is left to do (on a simulated clock, waiting out backoffs by moving the clock);
`projector` describes it as a real worker process (runtime.process), which runs until it
is told to stop.
"""

import random
from dataclasses import replace
from pathlib import Path

from runtime import process
from runtime.clock import Clock
from runtime.policies import GUARDED, Policies
from runtime.queue import Queue
from runtime.store import Store
from runtime.tickets.projector import HANDLERS
from runtime.worker import Worker, until_quiet

POLICIES: Policies = replace(GUARDED, lease_s=2.0)
"""GUARDED, with a short lease: a projection takes milliseconds, and a projector that dies
holding one should not hold its ticket's newer versions back for long. A lease that runs
out on a slow projection costs only a repeat, which the projector absorbs by version."""


def queue(store: Store, clock: Clock, *, seed: int = 0, policies: Policies = POLICIES) -> Queue:
    return Queue(store, clock, random.Random(seed), policies)


def project_until_quiet(queue: Queue, workers: int = 1, *, name: str = "projector") -> int:
    """Run `workers` projectors, taking turns, until no projection is ready; returns the
    attempts run. On a simulated clock a retry's backoff is waited out by moving the clock."""
    return until_quiet(
        queue, [Worker(f"{name}-{n}", queue, HANDLERS) for n in range(1, workers + 1)]
    )


PROJECTOR_BATCH = 16
"""Projections a projector thread leases at once and completes in one transaction."""


def projector(path: Path, *, concurrency: int = 1) -> process.Settings:
    """The projector as a real worker process (runtime.process): `fmlab project`, and the
    server's own projector thread. It takes what is ready, up to PROJECTOR_BATCH jobs, in
    one transaction and completes them in another: under a burst of commands, each one
    transaction of its own, a projector taking two transactions a job fell behind (lag
    past the 500 ms contract) where one taking two a batch keeps up."""
    return process.Settings(
        path, HANDLERS, POLICIES, concurrency, name="projector", batch=PROJECTOR_BATCH
    )
