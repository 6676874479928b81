"""Crash torture: real worker processes on one database, killed with SIGKILL at random
and started again, then every invariant and the database's own integrity check.
`make torture` (a SQLite file in WAL mode) and `make torture DB=postgresql` (a schema of
its own per trial on the server `make pg-up` started).

The simulator kills workers between named steps of one process. Here the kill is the
operating system's: a worker process dies wherever it is (inside a handler, inside a
commit, between a commit and its ack) and keeps nothing; its lease runs out and another
process's reaper hands the job on. A trial submits jobs whose handlers take a few
milliseconds and record one effect each, runs several `fmlab worker` processes of several
threads each, kills one at random many times (starting a new one in its place each time),
waits until every job has ended, stops the processes with SIGTERM (each must exit 0), and
then asks the database: lost jobs (not ended), duplicated effects (INV_001), any other
violated invariant, and the engine's integrity check (SQLite's `PRAGMA integrity_check`;
PostgreSQL's amcheck over every table and index).

`--without LEVER` runs the workers with one guard off, to show the torture catches what
the guard prevents: without the commit boundary, an effect is recorded before its commit,
and a kill between the two makes the retry record it again.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from runtime import invariants, states
from runtime.pg_store import in_schema
from runtime.policies import LEVERS
from runtime.queue import Queue
from runtime.stores import AnyStore, open_store, time_authority
from torture.handlers import KIND

FMLAB = Path(sys.executable).parent / "fmlab"
HANDLERS = "torture.handlers:HANDLERS"
QUIET_WAIT_S = 120.0
READY_WAIT_S = 30.0
ENGINES = {"sqlite": "SQLite (a WAL file)", "postgresql": "PostgreSQL"}


@dataclass
class Trial:
    number: int
    kills: int = 0
    rescued: int = 0
    """Leases the reaper took back from a killed process: kills that landed mid-job."""
    succeeded: int = 0
    dead: int = 0
    lost: int = 0
    duplicated: int = 0
    integrity: str = ""
    exits: list[int] = field(default_factory=list)
    other: Counter[str] = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.integrity == "ok"
            and not self.other
            and set(self.exits) <= {0}
        )


@contextmanager
def database(number: int, folder: Path, backend: str) -> Iterator[str]:
    """A new, empty database for one trial: a file, or a schema of its own (dropped after)."""
    if backend == "sqlite":
        yield str(folder / "torture.db")
        return
    url = os.environ.get("FMLAB_PG_URL")
    if not url:
        raise SystemExit("torture: FMLAB_PG_URL is unset; start a server with make pg-up")
    schema = f"torture_{os.getpid()}_{number}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")  # the check
        try:
            yield in_schema(url, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def trial(number: int, args: argparse.Namespace) -> Trial:
    rng = random.Random(args.seed * 1_000 + number)
    result = Trial(number)
    with tempfile.TemporaryDirectory() as folder, database(number, Path(folder), args.db) as db:
        store = open_store(db)
        queue = Queue(store, time_authority(store), random.Random(number))
        for _ in range(args.jobs):
            queue.submit(KIND, {"ms": rng.randint(0, args.work_ms)})
        store.close()
        workers = [start(db, Path(folder), f"w{n}", args) for n in range(1, args.workers + 1)]
        while result.kills < args.kills:
            time.sleep(rng.uniform(0.02, args.kill_every_s * 2))
            victim = rng.randrange(len(workers))
            workers[victim].process.send_signal(signal.SIGKILL)
            workers[victim].process.wait()
            result.kills += 1
            workers[victim] = start(db, Path(folder), f"w{victim + 1}k{result.kills}", args)
        wait_until_ended(db)
        for worker in workers:
            worker.ready()
            worker.process.send_signal(signal.SIGTERM)
        result.exits = [worker.process.wait(timeout=60) for worker in workers]
        store = open_store(db, read_only=True)
        try:
            count(store, result)
        finally:
            store.close()
    return result


@dataclass
class Running:
    """A worker process, and the file its log (one JSON line a step) goes to."""

    process: subprocess.Popen
    log: Path

    def ready(self) -> None:
        """Wait until it has logged `ready` (its SIGTERM handler is in place), or ended: a
        SIGTERM before then would kill a process that has not started, not stop one."""
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            if '"step": "ready"' in self.log.read_text():
                return
            time.sleep(0.01)


def start(db: str, folder: Path, name: str, args: argparse.Namespace) -> Running:
    argv = [
        str(FMLAB), "worker", "--db", db, "--handlers", HANDLERS,
        "--concurrency", str(args.concurrency), "--lease-s", str(args.lease_s), "--name", name,
        "--batch", str(args.batch),
    ]  # fmt: skip
    if args.without:
        argv += ["--without", args.without]
    log = folder / f"{name}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    return Running(process, log)


def wait_until_ended(db: str, wait_s: float = QUIET_WAIT_S) -> bool:
    """Until every job is SUCCEEDED or DEAD (True), or `wait_s` runs out (False: the torture
    counts the jobs still open as lost)."""
    deadline = time.monotonic() + wait_s
    store = open_store(db, create=False)  # not read-only: that reads a file with no writer
    # attached yet as immutable, and would never see the workers' progress
    try:
        while time.monotonic() < deadline:
            open_jobs = store.one(
                "SELECT count(*) FROM jobs WHERE state NOT IN ('SUCCEEDED', 'DEAD')"
            )[0]
            if open_jobs == 0:
                return True
            time.sleep(0.05)
        return False
    finally:
        store.close()


def count(store: AnyStore, result: Trial) -> None:
    states_ = Counter(row[0] for row in store.tuples("SELECT state FROM jobs"))
    result.succeeded, result.dead = states_[states.SUCCEEDED], states_[states.DEAD]
    result.lost = sum(n for state, n in states_.items() if state not in states.JOB_TERMINAL)
    result.integrity = store.integrity_check()
    result.rescued = store.one("SELECT count(*) FROM events WHERE type = 'lease.expired'")[0]
    for violation in invariants.check(store, final=True):
        if violation.inv == "INV_001":
            result.duplicated += 1
        elif not (violation.inv == "INV_004" and "ended the run" in violation.message):
            result.other[violation.inv] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torture.run", description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=150, help="jobs a trial")
    parser.add_argument("--workers", type=int, default=3, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="threads a process")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs a trial")
    parser.add_argument("--kill-every-s", type=float, default=0.15, help="mean gap between kills")
    parser.add_argument("--work-ms", type=int, default=20, help="longest handler, ms")
    parser.add_argument("--lease-s", type=float, default=1.0)
    parser.add_argument("--without", choices=LEVERS, default=None, metavar="LEVER")
    parser.add_argument("--batch", type=int, default=1, help="jobs a worker thread leases at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    policy = "GUARDED" if args.without is None else f"GUARDED without {args.without}"
    print(
        f"crash torture on {ENGINES[args.db]}, {policy}: {args.trials} trials of {args.jobs} jobs,"
        f" {args.workers} worker processes x {args.concurrency} threads, {args.kills} SIGKILLs"
        f" a trial, lease {args.lease_s:g} s, {args.batch} job(s) leased at a time"
    )
    print(
        "| trial | SIGKILLs | leases rescued | succeeded | dead | lost | duplicated effects"
        " | other | integrity |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    started, results = time.monotonic(), []
    for number in range(1, args.trials + 1):
        r = trial(number, args)
        results.append(r)
        other = ", ".join(f"{inv} x{n}" for inv, n in sorted(r.other.items())) or "-"
        exits = "" if set(r.exits) <= {0} else f" (exits {r.exits})"
        print(
            f"| {r.number} | {r.kills} | {r.rescued} | {r.succeeded} | {r.dead} | {r.lost}"
            f" | {r.duplicated}"
            f" | {other} | {r.integrity}{exits} |",
            flush=True,
        )
    total = Trial(0)
    for r in results:
        total.kills += r.kills
        total.rescued += r.rescued
        total.succeeded += r.succeeded
        total.dead += r.dead
        total.lost += r.lost
        total.duplicated += r.duplicated
        total.other.update(r.other)
    clean = sum(r.clean for r in results)
    print(
        f"\n{total.kills} SIGKILLs in {len(results)} trials ({time.monotonic() - started:.0f} s),"
        f" {total.rescued} leases rescued from killed processes: {total.succeeded} jobs"
        f" succeeded, {total.dead} dead, {total.lost} lost, {total.duplicated} duplicated"
        f" effects, other violations {dict(total.other) or 0}; {clean} of {len(results)}"
        " trials clean (integrity ok, every worker exited 0)"
    )

    return 0 if clean == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
