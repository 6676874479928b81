"""A real worker process on the real clock: what `fmlab worker` runs.

The simulator proves the design; a real process has to survive what a simulator only
models. Here `concurrency` threads each run the runtime's own Worker over their own
connection to one database file, and sweep expired leases when they find nothing ready (a
process that died holding one leaves it to be rescued). While a handler runs, a heartbeat
thread extends the attempt's lease every third of it, so a slow handler keeps its job and
a dead process loses it within one lease. SIGTERM or SIGINT stops the process gracefully:
each thread finishes the attempt in hand (the commit and the ack are quick; a handler is
not interrupted) and takes no other; the process exits 0 holding no lease. A SIGKILL is the
crash the rest of the runtime exists for: whatever the process held is rescued by the
reaper once its lease runs out.

Each step a thread takes is one JSON line on stderr, for a person or a log shipper.
"""

import json
import random
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from runtime.clock import Clock, SystemClock, WallClock
from runtime.errors import LeaseLost, StoreUnavailable
from runtime.policies import Policies
from runtime.queue import Lease, Queue
from runtime.stores import open_store, time_authority
from runtime.worker import Handler, Worker

POLL_S = 0.05
"""How long an idle thread waits before it looks for work again."""
BEATS_PER_LEASE = 3


@dataclass(frozen=True)
class Settings:
    database: str | Path
    """A SQLite file, or a PostgreSQL URL (runtime.stores)."""
    handlers: Mapping[str, Handler]
    policies: Policies
    concurrency: int = 1
    kinds: tuple[str, ...] | None = None
    name: str = "worker"
    seed: int = 0
    """Thread n draws its retry jitter from random.Random(seed + n)."""
    batch: int = 1
    """Jobs a thread leases at once, runs in turn and completes together (Worker.attempts):
    with every lever on, two transactions a batch."""
    clock_skew_s: float = 0.0
    """How far this machine's wall clock is off: a lab's way to stand for a second
    machine on one host. Only a queue without lever `store_clock` reads it (FM_010)."""

    @property
    def waits(self) -> bool:
        """Whether this process's SQLite connections wait for the write lock (FM_023)."""
        return self.policies.wait_for_write_lock

    def walls(self, *workers: str) -> dict[str, Clock]:
        """Each thread's wall clock: this machine's, off by `clock_skew_s`."""
        wall = WallClock(SystemClock())
        wall.offset = self.clock_skew_s
        return dict.fromkeys(workers, wall)


def run(
    settings: Settings,
    stop: threading.Event,
    log: TextIO | None = sys.stderr,
    wake: threading.Event | None = None,
) -> None:
    """Run `settings.concurrency` threads until `stop` is set and each has finished the
    attempt in hand. `log` None: no log (a server's own projector thread). `wake`: set by
    whoever just enqueued work in this process, so an idle thread need not wait its poll;
    set it with `stop` too."""
    lock = threading.Lock()

    def write(record: dict[str, Any]) -> None:
        if log is None:
            return
        with lock:
            log.write(json.dumps(record, sort_keys=True) + "\n")
            log.flush()

    threads = [
        threading.Thread(target=_thread, args=(settings, n, stop, write, wake))
        for n in range(1, settings.concurrency + 1)
    ]
    # From here a SIGTERM is a graceful stop (the caller installed its handler first); a
    # supervisor that must not stop a process mid-start waits for this line.
    write({"at": SystemClock().now(), "worker": settings.name, "step": "ready"})
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _thread(
    settings: Settings,
    n: int,
    stop: threading.Event,
    write: Callable[[dict[str, Any]], None],
    wake: threading.Event | None,
) -> None:
    name = f"{settings.name}.{n}"
    store = open_store(settings.database, create=False, wait_for_lock=settings.waits)
    authority, jitter = time_authority(store), random.Random(settings.seed + n)
    queue = Queue(store, authority, jitter, settings.policies, walls=settings.walls(name))
    clock = SystemClock()  # a log line is stamped by this machine, whatever the store's time
    worker = Worker(name, queue, settings.handlers, settings.kinds)
    beat = _Heartbeat(settings, name)
    worker.before_completion = lambda: beat.hold(())
    try:
        while not stop.is_set():
            try:
                if queue.has_expired_lease():
                    for job in queue.reap():
                        write({"at": clock.now(), "worker": name, "step": "rescued", "job": job})
                took = False
                for step in worker.attempts(settings.batch):
                    took = True
                    beat.hold(worker.held if step in HANDLER_STEPS else ())
                    write(_record(clock.now(), name, step, worker.lease))
            except StoreUnavailable as error:  # locked past the busy timeout: try again
                write(
                    {"at": clock.now(), "worker": name, "step": "store_error", "error": f"{error}"}
                )
                took = False
            finally:
                beat.hold(())
            if not took and (wake or stop).wait(POLL_S) and wake is not None:
                wake.clear()
    finally:
        beat.close()
        store.close()


def _record(at: float, name: str, step: str, lease: Lease | None) -> dict[str, Any]:
    record: dict[str, Any] = {"at": at, "worker": name, "step": step}
    if lease is not None:
        record.update(job=lease.job_id, execution=lease.execution_id, token=lease.fencing_token)
    return record


HANDLER_STEPS = frozenset({"leased", "started", "effect_applied"})
"""The steps after which a worker's leases are held for handlers to run: a single job's
until it commits, a batch's until its completion (`Worker.before_completion`)."""


class _Heartbeat:
    """Extends the held leases every third of a lease, counted from when the worker took
    them, on a connection of its own; gives up a lease at its first refusal (it is lost:
    the fence will refuse the attempt's next write too)."""

    def __init__(self, settings: Settings, worker: str) -> None:
        self._settings = settings
        self._worker = worker
        self._leases: tuple[Lease, ...] = ()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def hold(self, leases: tuple[Lease, ...]) -> None:
        with self._changed:
            self._leases = leases
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _beat(self) -> None:
        settings = self._settings
        store = open_store(settings.database, create=False, wait_for_lock=settings.waits)
        queue = Queue(
            store,
            time_authority(store),
            random.Random(settings.seed),
            settings.policies,
            walls=settings.walls(self._worker),
        )
        every = settings.policies.lease_s / BEATS_PER_LEASE
        clock = SystemClock()
        due: float | None = None
        """When the held leases are next extended; set when leases are first held, so that
        a batch's jobs following one another do not put the beat off."""
        try:
            with self._changed:
                while not self._closed:
                    if not self._leases:
                        due = None
                        self._changed.wait()
                        continue
                    now = clock.now()
                    due = now + every if due is None else due
                    if now < due:
                        self._changed.wait(due - now)
                        continue
                    kept = []
                    for lease in self._leases:
                        try:
                            queue.heartbeat(lease)
                            kept.append(lease)
                        except (LeaseLost, StoreUnavailable):
                            pass
                    self._leases, due = tuple(kept), clock.now() + every
        finally:
            store.close()
