"""FM_023 with real processes: four `fmlab worker` processes of two threads each on one
SQLite file in WAL mode, taking 200 short jobs.

Contention is the point, so nothing here is simulated: eight connections in four
processes commit as fast as they can. Without lever `wait_for_write_lock` each connection
has no busy timeout and begins deferred, so a commit that meets another's lock fails with
"database is locked"; with it, each waits its turn. `fmlab check` then reads what the
workers recorded.
"""

import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.clock import SystemClock
from runtime.queue import Queue
from runtime.store import Store
from torture.handlers import KIND
from torture.run import wait_until_ended

FMLAB = Path(sys.executable).parent / "fmlab"
PROCESSES = 4
THREADS = 2
JOBS = 200
WAIT_S = 90.0


@dataclass(frozen=True)
class Outcome:
    check_exit: int
    report: str
    """What `fmlab check --final` printed."""
    store_errors: int
    """Transactions the workers' logs say the store refused (`store_error` lines)."""
    refused: int
    """Refusals the runtime recorded in the database (`store.refused`)."""
    states: dict[str, int]
    """Jobs by final state."""


def run_workers(tmp: Path, *without: str) -> Outcome:
    db = tmp / "lab.db"
    store = Store.open(db)
    queue = Queue(store, SystemClock(), random.Random(0))
    for _ in range(JOBS):
        queue.submit(KIND, {"ms": 1})
    levers = [arg for lever in without for arg in ("--without", lever)]
    logs = [tmp / f"w{n}.log" for n in range(1, PROCESSES + 1)]
    workers = [_start(db, log, levers) for log in logs]
    try:
        if not wait_until_ended(str(db), WAIT_S):
            raise AssertionError(f"the jobs did not end within {WAIT_S:g} s")
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        exits = [process.wait(timeout=30) for process in workers]
    assert exits == [0] * PROCESSES, exits
    refused = store.one("SELECT count(*) FROM events WHERE type = 'store.refused'")[0]
    states = {row[0]: row[1] for row in store.all("SELECT state, count(*) FROM jobs GROUP BY 1")}
    store.close()
    check = subprocess.run(
        [str(FMLAB), "check", "--db", str(db), "--final"], capture_output=True, text=True
    )
    errors = sum(log.read_text().count('"step": "store_error"') for log in logs)
    return Outcome(check.returncode, check.stdout + check.stderr, errors, refused, states)


def _start(db: Path, log: Path, levers: list[str]) -> subprocess.Popen:
    argv = [
        str(FMLAB), "worker", "--db", str(db), "--handlers", "torture.handlers:HANDLERS",
        "--concurrency", str(THREADS), "--lease-s", "1", "--name", log.stem, *levers,
    ]  # fmt: skip
    with log.open("w") as stderr:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
