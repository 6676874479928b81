"""The tickets service's settings and its projector loop: what `fmlab serve` and
`fmlab project` run.

The projector is the runtime's own worker with the projection handler: leases, retries,
backoff and dead letters all come from the queue. On a simulated clock the loop runs until
nothing is left to do; `project_forever` is the long-running form, for a real clock, which
waits between polls until it is told to stop.
"""

import random
import threading
from dataclasses import replace

from runtime.clock import Clock, SimClock
from runtime.errors import StoreUnavailable
from runtime.policies import GUARDED, Policies
from runtime.queue import Queue
from runtime.store import Store
from runtime.tickets.projector import HANDLERS
from runtime.worker import Worker

POLICIES: Policies = replace(GUARDED, lease_s=2.0)
"""GUARDED, with a short lease: a projection takes milliseconds, and a projector that dies
holding one should not hold its ticket's newer versions back for long. A lease that runs
out on a slow projection costs only a repeat, which the projector absorbs by version."""
POLL_S = 0.05
"""How long an idle projector waits before it looks for work again (a real clock only)."""


def queue(store: Store, clock: Clock, *, seed: int = 0, policies: Policies = POLICIES) -> Queue:
    return Queue(store, clock, random.Random(seed), policies)


def project_until_quiet(queue: Queue, workers: int = 1, *, name: str = "projector") -> int:
    """Run `workers` projectors, taking turns, until no projection is ready; returns the
    attempts run. On a simulated clock a retry's backoff is waited out by moving the clock."""
    crew = [Worker(f"{name}-{n}", queue, HANDLERS) for n in range(1, workers + 1)]
    simulated = queue.clock if isinstance(queue.clock, SimClock) else None
    attempts = 0
    while True:
        if queue.has_expired_lease():
            queue.reap()
        ran = sum(1 for worker in crew if worker.run_one())
        attempts += ran
        if ran:
            continue
        deadline = queue.next_deadline()
        if deadline is None or simulated is None:
            return attempts
        simulated.set(max(deadline, simulated.now()))


def project_forever(
    queue: Queue, stop: threading.Event, *, wake: threading.Event | None = None,
    name: str = "projector",
) -> None:  # fmt: skip
    """One projector on a real clock until `stop` is set: run whatever is ready, sweep
    expired leases (a projector that died holding one), then wait a poll, or until `wake`
    is set (by a command in the same process, so its projection need not wait the poll)."""
    worker = Worker(name, queue, HANDLERS)
    wake = wake or threading.Event()
    while not stop.is_set():
        try:
            if queue.has_expired_lease():
                queue.reap()
            if worker.run_one():
                continue
        except StoreUnavailable:  # the file stayed locked past the busy timeout: try again
            queue.marks.hit("store.unavailable")
        if wake.wait(POLL_S):
            wake.clear()
