"""The intent system's settings and its worker loop: what `fmlab work` runs.

The policies are GUARDED with the intent log's stated backoff (10 s, 30 s, 2 min, 10 min,
then every 10 min) and five attempts a sync. The sync target is a Dependency whose share of
failed calls is set by the caller (the fault plan), drawn from a seeded Random.
"""

import random
from dataclasses import replace

from runtime.clock import Clock, SimClock
from runtime.dependency import Dependency, Remote
from runtime.errors import UsageError
from runtime.intents.log import HANDLERS, SYNC_TARGET
from runtime.policies import GUARDED, Policies
from runtime.queue import Queue
from runtime.store import Store
from runtime.worker import Worker, until_quiet

POLICIES: Policies = replace(GUARDED, retry_schedule_s=(10.0, 30.0, 120.0, 600.0), attempts_max=5)


def with_attempts(policies: Policies, attempts: int) -> Policies:
    """`policies` as the intent log runs them (its stated backoff), with `attempts` a job:
    the explored worlds built on the intent log give a sync more than its usual five."""
    return replace(policies, retry_schedule_s=POLICIES.retry_schedule_s, attempts_max=attempts)


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


def work(queue: Queue, workers: int = 2, *, sync_latency_s: float = 0.0) -> int:
    """Run `workers` workers, taking turns, until nothing is left to do; returns the number
    of attempts run. On a simulated clock, when nothing is ready the clock moves to the
    next retry, and each call to the sync target takes `sync_latency_s` of it (the fault
    plan's latency: longer than a lease, and the attempt's own commit is refused). On a
    real clock the loop stops when nothing is ready; the retries wait for a later run."""
    if sync_latency_s < 0:
        raise UsageError(f"a latency cannot be negative, got {sync_latency_s}")
    crew = [Worker(f"w{n}", queue, HANDLERS) for n in range(1, workers + 1)]
    simulated = queue.clock if isinstance(queue.clock, SimClock) else None

    def slow_sync(worker: Worker, step: str) -> None:
        if step == "effect_applied" and worker.in_external_call and simulated:
            simulated.advance(sync_latency_s)

    return until_quiet(queue, crew, slow_sync)
