"""FM_010 on real machines: two worker processes whose wall clocks disagree, one queue on
PostgreSQL.

The simulator steps one worker's clock mid-lease. Between machines the same mistake needs
no step: their clocks simply disagree, all the time, by however far each has drifted. Here
two `fmlab worker` processes share one PostgreSQL schema; `slow`'s wall clock is 45 s
behind (`--clock-skew-s -45`, the lab's stand-in for a second machine on one host). With
lever `store_clock` off, a lease's deadline is set and checked on the clock of the worker
that holds it, so every lease `slow` takes is born 43 s expired by the server's clock, and
its start, commit and ack are let through anyway. With the lever, the one clock both
machines read for a lease is the database server's (`runtime.clock.DatabaseClock`): the
skew changes nothing.
"""

import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.queue import Queue
from runtime.stores import open_store, time_authority
from torture.handlers import KIND
from torture.run import wait_until_ended

FMLAB = Path(sys.executable).parent / "fmlab"
SKEW_S = -45.0
"""How far `slow`'s clock is behind: more than a lease, so its leases are born expired."""
LEASE_S = 2.0
JOBS = 24
WAIT_S = 60.0


@dataclass(frozen=True)
class Outcome:
    check_exit: int
    report: str
    """What `fmlab check --final` printed over the queue the two machines shared."""
    acked: dict[str, int]
    """Per machine, the attempts it took to the end (its log's `acked` steps)."""


def run_two_machines(url: str, tmp: Path, *without: str) -> Outcome:
    """Submit JOBS short jobs, run `fast` and `slow` until every job has ended, stop both
    with SIGTERM, then check every invariant over what they left."""
    store = open_store(url)
    queue = Queue(store, time_authority(store), random.Random(0))
    for _ in range(JOBS):
        queue.submit(KIND, {"ms": 20})
    levers = [arg for lever in without for arg in ("--without", lever)]
    machines = {
        name: _start(url, tmp / f"{name}.log", name, skew, levers)
        for name, skew in (("slow", SKEW_S), ("fast", 0.0))
    }
    try:
        if not wait_until_ended(url, WAIT_S):
            raise AssertionError(f"the jobs did not end within {WAIT_S:g} s")
    finally:
        store.close()
        for process in machines.values():
            process.send_signal(signal.SIGTERM)
        exits = {name: process.wait(timeout=30) for name, process in machines.items()}
    assert exits == {"slow": 0, "fast": 0}, exits
    check = subprocess.run(
        [str(FMLAB), "check", "--db", url, "--final"], capture_output=True, text=True
    )
    acked = {name: (tmp / f"{name}.log").read_text().count('"step": "acked"') for name in machines}
    return Outcome(check.returncode, check.stdout + check.stderr, acked)


def _start(url: str, log: Path, name: str, skew: float, levers: list[str]) -> subprocess.Popen:
    argv = [
        str(FMLAB), "worker", "--db", url, "--handlers", "torture.handlers:HANDLERS",
        "--lease-s", str(LEASE_S), "--name", name, "--clock-skew-s", str(skew), *levers,
    ]  # fmt: skip
    with log.open("w") as stderr:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
