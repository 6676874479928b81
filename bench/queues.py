"""The runtime beside the queues people already use: `make bench`.

One run, one machine, one workload for every system (bench/peers.py): submit N no-op
jobs, each durably, then take them one by one, run each (a no-op) and acknowledge it
durably, until none is left. Every system writes a fresh SQLite file in WAL mode, first at
synchronous=NORMAL, then at FULL, and the pragmas each connection reports are printed
beside its figures. Figures: end-to-end jobs/s (first submit to last acknowledgement),
p50 / p99 submit-to-done latency, and the ratio to bare sqlite3 doing the same number of
durable commits in the same run. Then the runtime's processing alone with 1 and 2 worker
processes, and, when a PostgreSQL server is up (FMLAB_PG_URL), the runtime beside
procrastinate there (bench/postgres.py). The tables and a plot go into docs/benchmarks.md,
under `## Queues`.
"""

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench import doc, postgres
from bench.peers import PEERS, Lab, Peer, now
from bench.release import released_together
from runtime.store import SYNCHRONOUS

HEADING = "## Queues"
PLOT = doc.DOC.parent / "benchmarks_queues.png"
JOBS = 2_000
LEVELS = ("NORMAL", "FULL")
RAW_GOAL = 0.5
"""The runtime's goal: at least half the bare-sqlite3 limit at synchronous=NORMAL."""
PEER_NAMES = ("huey", "persist-queue", "litequeue")
VERSIONS = {"huey": "huey", "persist-queue": "persist-queue", "litequeue": "litequeue"}


@dataclass(frozen=True)
class Run:
    name: str
    synchronous: str
    pragmas: tuple[str, str]
    jobs: int
    seconds: float
    latencies: list[float]

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(peer_class: type, synchronous: str, jobs: int) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        peer: Peer = peer_class(Path(folder), synchronous)
        try:
            submitted = []
            started = now()
            for i in range(jobs):
                peer.submit(i)
                submitted.append(now())
            done: list[float] = []
            while finished := peer.finish():
                done += [now()] * finished
            seconds = now() - started
            if len(done) != jobs:
                raise SystemExit(f"{peer.name} finished {len(done)} of {jobs} jobs")
            # Every system takes its jobs oldest first, so the k-th done is the k-th submitted.
            latencies = [end - begin for begin, end in zip(submitted, done, strict=True)]
            return Run(peer.name, synchronous, peer.pragmas(), jobs, seconds, latencies)
        finally:
            peer.close()


def drain(path: Path, synchronous: str) -> int:
    """A worker process of the runtime: ready, wait for `go`, then take jobs until none is
    ready. Prints how many it finished."""
    peer = Lab(path.parent, synchronous)  # the file the parent filled
    print("ready", flush=True)
    sys.stdin.readline()
    count = 0
    while finished := peer.finish():
        count += finished
    print(count, flush=True)
    peer.close()
    return 0


def processes(synchronous: str, jobs: int, count: int) -> float:
    """The runtime's processing rate (jobs/s) with `count` worker processes, from the
    moment all of them are ready to the last acknowledgement."""
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(Path(folder), synchronous)
        lab.queue.submit_many("bench.noop", [{"i": i} for i in range(jobs)])
        lab.close()
        argv = [sys.executable, "-m", "bench.queues", "--drain", str(lab.path)]
        seconds, results = released_together([*argv, "--synchronous", synchronous], count)
        finished = sum(int(result) for result in results)
        if finished != jobs:
            raise SystemExit(f"{count} worker processes finished {finished} of {jobs} jobs")
        return jobs / seconds


def versus(ours: float, theirs: float) -> str:
    verdict = "**ahead**" if ours >= theirs else "**behind**"
    return f"{number(ours)} jobs/s, {verdict} ({ours / theirs:.2f}x)"


def number(value: float) -> str:
    return f"{value:,.0f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def section(runs: list[Run], rates: dict[tuple[str, int], float], jobs: int) -> str:
    limit = {r.synchronous: r.per_s for r in runs if r.name == "bare sqlite3"}
    rows = [
        f"| {r.name} | {r.synchronous} | {r.pragmas[0]} / {r.pragmas[1]} | {number(r.per_s)}"
        f" | {ms(r.percentile(0.5))} / {ms(r.percentile(0.99))}"
        f" | {r.per_s / limit[r.synchronous]:.2f}x |"
        for r in runs
    ]
    lab = {r.synchronous: r for r in runs if r.name == "failure-mode-lab"}
    peers = [r for r in runs if r.name in PEER_NAMES]
    batched = {r.synchronous: r for r in runs if r.name == "failure-mode-lab, batched"}
    verdicts = []
    for level in LEVELS:
        best = max((r for r in peers if r.synchronous == level), key=lambda r: r.per_s)
        verdicts.append(
            f"- synchronous={level}, against the best peer ({best.name},"
            f" {number(best.per_s)} jobs/s): the runtime one job at a time"
            f" {versus(lab[level].per_s, best.per_s)}, batched"
            f" {versus(batched[level].per_s, best.per_s)}"
        )
    for name, run_ in (("one job at a time", lab), ("batched", batched)):
        ratio = run_["NORMAL"].per_s / limit["NORMAL"]
        verdicts.append(
            f"- the runtime {name} at synchronous=NORMAL: {ratio:.2f}x the bare-sqlite3 limit"
            f" (goal: at least {RAW_GOAL:.2f}x, "
            + ("**met**)" if ratio >= RAW_GOAL else "**not met**)")
        )
    process_rows = [
        f"| {level} | {number(rates[(level, 1)])} | {number(rates[(level, 2)])}"
        f" | {rates[(level, 2)] / rates[(level, 1)]:.2f}x |"
        for level in LEVELS
    ]
    versions = ", ".join(f"{name} {metadata.version(dist)}" for name, dist in VERSIONS.items())
    return (
        f"{HEADING}\n\n"
        f"Written by `make bench` (`bench/queues.py`, adapters in `bench/peers.py`). Each\n"
        f"system submits {jobs:,} no-op jobs, each durably, then takes, runs and\n"
        "acknowledges them one by one until none is left, in one process, on a fresh SQLite\n"
        "file. Bare sqlite3 makes the same two durable commits a job (an INSERT, then an\n"
        "UPDATE) and nothing else: the limit. The runtime makes three, each logged with its\n"
        "events: the submit, the lease (with the start), and the completion (effect, commit\n"
        "and acknowledgement, fenced); batched, it submits 100 jobs to a transaction, and\n"
        "leases 8 at a time and completes the 8 in one transaction. huey acknowledges on\n"
        "receipt (it deletes the task, then runs it).\n\n"
        "| system | synchronous | journal / synchronous reported | jobs/s | latency p50 / p99"
        " (ms) | ÷ bare sqlite3 |\n"
        "| --- | --- | --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
        "Latency is submit to acknowledgement: every job waits for the submits after it, so it\n"
        "measures the whole run's pace, the same way for every system.\n\n"
        + "\n".join(verdicts)
        + "\n\n"
        "The runtime's processing alone (the jobs already submitted), with 1 and 2 worker\n"
        "processes on the same file, jobs/s from the moment every process is ready:\n\n"
        "| synchronous | 1 process | 2 processes | 2 ÷ 1 |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(process_rows) + "\n\n"
        f"![jobs/s by system](benchmarks_queues.png)\n\n"
        f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}; {versions}.\n"
    )


def plot(runs: list[Run]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in runs if r.synchronous == LEVELS[0]]
    figure, axes = plt.subplots(figsize=(10, 4.2), dpi=100)
    width = 0.4
    for offset, level in enumerate(LEVELS):
        values = [
            next(r.per_s for r in runs if r.name == n and r.synchronous == level) for n in names
        ]
        positions = [i + (offset - 0.5) * width for i in range(len(names))]
        axes.bar(positions, values, width, label=f"synchronous={level}")
    axes.set_xticks(range(len(names)), [name.replace(", ", ",\n") for name in names], fontsize=9)
    axes.set_ylabel("jobs/s (submit, run, acknowledge)")
    axes.set_title("One process, one SQLite file in WAL mode, no-op jobs")
    axes.legend()
    figure.tight_layout()
    figure.savefig(PLOT, metadata={"Software": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queues", description=__doc__)
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--drain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--synchronous", choices=SYNCHRONOUS, default="NORMAL")
    args = parser.parse_args(argv)
    if args.drain is not None:
        return drain(args.drain, args.synchronous)
    for peer in PEERS:  # warm up: imports, first files
        run(peer, "NORMAL", 50)
    runs = []
    for level in LEVELS:
        for peer in PEERS:
            result = run(peer, level, args.jobs)
            runs.append(result)
            print(
                f"{result.name:18} {level:6} {number(result.per_s):>8} jobs/s"
                f"  p50 {ms(result.percentile(0.5))} ms  p99 {ms(result.percentile(0.99))} ms"
                f"  ({result.pragmas[0]}, {result.pragmas[1]})",
                flush=True,
            )
    rates = {(level, n): processes(level, args.jobs, n) for level in LEVELS for n in (1, 2)}
    for (level, n), rate in rates.items():
        print(f"failure-mode-lab   {level:6} {n} worker process(es): {number(rate)} jobs/s")
    text = section(runs, rates, args.jobs)
    server = os.environ.get("FMLAB_PG_URL")
    if server:
        results = postgres.measure(server, args.jobs)
        for result in results:
            print(
                f"{result.name:18} PostgreSQL submits {number(result.submit_per_s)}/s, jobs/s"
                f" with 1 and 2 worker processes: {number(result.work_per_s[1])},"
                f" {number(result.work_per_s[2])}"
            )
        text += "\n" + postgres.section(results, args.jobs, postgres.server_version(server))
    else:
        text += "\n### On PostgreSQL\n\nNot measured in this run: no server (`make pg-up`).\n"
    doc.write(HEADING, text)
    plot(runs)
    print(f"\nwrote {HEADING} of {doc.DOC.name} and {PLOT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
