"""The intent system's settings and its worker loop: what `fmlab work` runs.

The policies are GUARDED with the intent log's stated backoff (10 s, 30 s, 2 min, 10 min,
then every 10 min) and five attempts a sync. The sync target is a Dependency whose share of
failed calls is set by the caller (the fault plan), drawn from a seeded Random.
"""

import random
from dataclasses import replace

from runtime.clock import Clock, SimClock
from runtime.dependency import Dependency, Remote
from runtime.intents.log import HANDLERS, SYNC_TARGET
from runtime.policies import GUARDED, Policies
from runtime.queue import Queue
from runtime.store import Store
from runtime.worker import Worker

POLICIES: Policies = replace(GUARDED, retry_schedule_s=(10.0, 30.0, 120.0, 600.0), attempts_max=5)


def sync_target(fail_rate: float, seed: int) -> Remote:
    """The outside system intents are synced to: always up, failing `fail_rate` of calls."""
    target = Dependency(
        SYNC_TARGET, down=(0.0, 0.0), capacity=1_000_000, window_s=1.0,
        retries_max=1_000_000, fail_rate=fail_rate,
    )  # fmt: skip
    return Remote(target, random.Random(seed) if fail_rate else None)


def queue(store: Store, clock: Clock, *, fail_rate: float = 0.0, seed: int = 0) -> Queue:
    return Queue(
        store, clock, random.Random(seed), POLICIES, {SYNC_TARGET: sync_target(fail_rate, seed)}
    )


def database_time(store: Store) -> float:
    """The simulated time of a lab database: its latest event's, 0.0 when it has none.
    Commands run with `--clock sim` start there, so a scripted session is the same twice."""
    return store.one("SELECT coalesce(max(at), 0.0) FROM events")[0]


def work(queue: Queue, workers: int = 2) -> int:
    """Run `workers` workers, taking turns, until nothing is left to do; returns the number
    of attempts run. On a simulated clock, when nothing is ready the clock moves to the
    next retry; on a real one, the loop stops there and the retries wait for a later run."""
    crew = [Worker(f"w{n}", queue, HANDLERS) for n in range(1, workers + 1)]
    attempts = 0
    while True:
        if queue.has_expired_lease():  # a worker of an earlier run died holding a job
            queue.reap()
        ran = sum(1 for worker in crew if worker.run_one())
        attempts += ran
        if ran:
            continue
        deadline = queue.next_deadline()
        if deadline is None or not isinstance(queue.clock, SimClock):
            return attempts
        queue.clock.set(max(deadline, queue.clock.now()))
