"""The runtime beside procrastinate on one PostgreSQL server: part of `make bench`.

Both get a fresh schema of their own on the server `make pg-up` started, and the same
workload: N no-op jobs submitted one by one (procrastinate's `defer`, the runtime's
`submit`), then processed to completion by 1, then 2, worker processes started
beforehand and released together. Figures: submits/s, and processing jobs/s from the
release to the last job done. The runtime's workers take the server's clock for every
lease (runtime.clock.DatabaseClock), as `fmlab worker` does there.
"""

import os
import random
import sys
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata

import psycopg

from bench.release import released_together
from runtime.pg_store import PgStore, in_schema
from runtime.queue import Queue
from runtime.stores import time_authority
from runtime.worker import Worker

KIND = "bench.noop"
LAB, LAB_BATCHED, PROCRASTINATE = "failure-mode-lab", "failure-mode-lab, batched", "procrastinate"
SYSTEMS = (LAB, LAB_BATCHED, PROCRASTINATE)
BATCHES = {LAB: (1, 1), LAB_BATCHED: (100, 8)}
"""The runtime's (jobs submitted a transaction, jobs leased a transaction), as on SQLite
(bench/peers.py): one by one, and its fast paths (`Queue.submit_many`, `--batch 8`)."""


@dataclass(frozen=True)
class Measured:
    name: str
    submit_per_s: float
    work_per_s: dict[int, float]
    """Processing jobs/s, by number of worker processes."""


def fresh_schema(url: str, name: str) -> str:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.execute(f"CREATE SCHEMA {name}")
    return in_schema(url, name)


def drop_schema(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def procrastinate_app(url: str):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    app.task(name=KIND)(_noop)
    return app


def _noop(i: int) -> None:
    return None


def submit_lab(system: str, url: str, jobs: int) -> float:
    batch = BATCHES[system][0]
    store = PgStore.open(url)
    queue = Queue(store, time_authority(store), random.Random(0))
    started = time.perf_counter()
    for first in range(0, jobs, batch):
        payloads = [{"i": i} for i in range(first, min(jobs, first + batch))]
        if batch == 1:
            queue.submit(KIND, payloads[0])
        else:
            queue.submit_many(KIND, payloads)
    seconds = time.perf_counter() - started
    store.close()
    return jobs / seconds


def submit_procrastinate(system: str, url: str, jobs: int) -> float:
    app = procrastinate_app(url)
    with app.open():
        app.schema_manager.apply_schema()
        task = app.tasks[KIND]
        started = time.perf_counter()
        for i in range(jobs):
            task.defer(i=i)
        seconds = time.perf_counter() - started
    return jobs / seconds


def drain(system: str, url: str) -> int:
    """One worker process: ready, wait for `go`, then work until nothing is left."""
    if system in BATCHES:
        store = PgStore.open(url, create=False)
        queue = Queue(store, time_authority(store), random.Random(0))
        worker = Worker(f"bench.{os.getpid()}", queue, {KIND: lambda job: None})
        print("ready", flush=True)
        sys.stdin.readline()
        while list(worker.attempts(BATCHES[system][1])):  # none: the queue is empty
            pass
        store.close()
    else:
        app = procrastinate_app(url)
        with app.open():
            print("ready", flush=True)
            sys.stdin.readline()
            app.run_worker(
                wait=False, concurrency=1, install_signal_handlers=False, listen_notify=False
            )
    print("done", flush=True)
    return 0


def work(system: str, url: str, processes: int) -> float:
    argv = [sys.executable, "-m", "bench.postgres", "--drain", system, url]
    seconds, _ = released_together(argv, processes)
    return seconds


def done_count(system: str, url: str) -> int:
    sql = (
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        if system == PROCRASTINATE
        else "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"
    )
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def measure(server: str, jobs: int) -> list[Measured]:
    results = []
    for system in SYSTEMS:
        submit = submit_procrastinate if system == PROCRASTINATE else submit_lab
        submit_rates, work_rates = [], {}
        for processes in (1, 2):
            name = "bench_" + "".join(c if c.isalnum() else "_" for c in system) + f"_{processes}"
            url = fresh_schema(server, name)
            try:
                submit_rates.append(submit(system, url, jobs))
                seconds = work(system, url, processes)
                finished = done_count(system, url)
                if finished != jobs:
                    raise SystemExit(f"{system}: {finished} of {jobs} jobs done")
                work_rates[processes] = jobs / seconds
            finally:
                drop_schema(server, name)
        results.append(Measured(system, max(submit_rates), work_rates))
    return results


def section(results: list[Measured], jobs: int, server_version: str) -> str:
    rows = [
        f"| {r.name} | {r.submit_per_s:,.0f} | {r.work_per_s[1]:,.0f} | {r.work_per_s[2]:,.0f} |"
        for r in results
    ]
    other = next(r for r in results if r.name == PROCRASTINATE)
    verdicts = [
        f"- {lab.name}, {n} worker process{'es' if n > 1 else ''}: {lab.work_per_s[n]:,.0f}"
        f" jobs/s, procrastinate {other.work_per_s[n]:,.0f}: "
        + ("**ahead**" if lab.work_per_s[n] >= other.work_per_s[n] else "**behind**")
        + f" ({lab.work_per_s[n] / other.work_per_s[n]:.2f}x)"
        for lab in results
        if lab is not other
        for n in (1, 2)
    ]
    about = (
        f"The runtime and procrastinate {metadata.version('procrastinate')} on one PostgreSQL "
        f"{server_version} server (`make pg-up`: loopback, fsync on, default settings), each "
        f"in a fresh schema: {jobs:,} no-op jobs submitted, then processed by worker "
        "processes started beforehand and released together. The runtime one job at a time "
        "(a submit a transaction; a lease with its start, then a completion: two "
        "transactions a job) and batched as on SQLite (100 submits a transaction; 8 jobs "
        "leased in one transaction and completed in another); procrastinate one job at a "
        "time, as its `defer` and `run_worker` (concurrency 1, polling, no LISTEN/NOTIFY) do."
    )
    return (
        "### On PostgreSQL\n\n"
        + textwrap.fill(about, width=90, break_on_hyphens=False)
        + "\n\n| system | submits/s | jobs/s, 1 worker process | jobs/s, 2 worker processes |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n" + "\n".join(verdicts) + "\n"
    )


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--drain":
    # Run from the module by its own name, so procrastinate's app is not one made in
    # __main__ (which it warns about on every start).
    from bench import postgres

    sys.exit(postgres.drain(sys.argv[2], sys.argv[3]))
