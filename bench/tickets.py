"""The tickets service's consistency, from a real run over HTTP: `make bench-tickets`.

The read model trails the write model by design; the contract (`READ_LAG_MS`) says by how
much. This run measures it as it is: a real `fmlab serve` on a fresh database file on
loopback, clients sending commands at once over HTTP, a reader reading as they go. Twice,
side by side: with the projector as the server's own thread (woken by each command it
commits) and as a separate `fmlab project` process (which can only poll). The projection
lag is the server's own figure (`/metrics`, per version, from its commit to its
projection); command latency is what the clients waited. The figures are printed and
written into docs/benchmarks.md, under `## Tickets service`.
"""

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import doc
from runtime.tickets import lag

HEADING = "## Tickets service"
FMLAB = Path(sys.executable).parent / "fmlab"
CLIENTS = 8
TICKETS_PER_CLIENT = 25
"""Each ticket is three commands: opened, moved in progress, noted."""
WAIT_S = 60.0
PACED = 100.0
"""Commands a second, all clients together, for the paced runs."""
LAG_P50 = 'fmlab_ticket_projection_lag_ms{quantile="0.5"}'
LAG_P99 = 'fmlab_ticket_projection_lag_ms{quantile="0.99"}'


@dataclass(frozen=True)
class Run:
    name: str
    commands: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    metrics: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.commands / self.seconds


def call(url: str, method: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text[:1] in "{[" else text


def metrics(url: str) -> dict[str, float]:
    text = call(url + "/metrics", "GET")
    assert isinstance(text, str)
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def measure(name: str, separate_projector: bool, rate: float | None = None) -> Run:
    """One run on a fresh file; `rate`: commands a second for all clients together (None:
    as fast as they are answered, a burst)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tickets.db"
        extra = ["--no-projector"] if separate_projector else []
        server = subprocess.Popen(
            [str(FMLAB), "serve", "--db", str(db), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        projector = None
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[-1]
            if separate_projector:
                projector = subprocess.Popen(
                    [str(FMLAB), "project", "--db", str(db)], stderr=subprocess.DEVNULL
                )
            return _drive(name, url, rate)
        finally:
            for process in (projector, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)


def _drive(name: str, url: str, rate: float | None) -> Run:
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def client(n: int) -> None:
        mine = []

        gap = None if rate is None else CLIENTS / rate
        due = time.perf_counter()

        def timed(method: str, path: str, body: object) -> object:
            nonlocal due
            if gap is not None:  # paced: each client sends one command every `gap` seconds
                time.sleep(max(0.0, due - time.perf_counter()))
                due += gap
            started = time.perf_counter()
            answer = call(url + path, method, body)
            mine.append(time.perf_counter() - started)
            return answer

        for k in range(TICKETS_PER_CLIENT):
            opened = timed("POST", "/tickets", {"subject": f"client {n}, {k}", "message": "Help"})
            assert isinstance(opened, dict)
            timed("PATCH", f"/tickets/{opened['id']}/status", {"status": "in_progress"})
            timed("PATCH", f"/tickets/{opened['id']}/note", {"note": "On it."})
        with lock:
            latencies.extend(mine)

    def reader() -> None:
        while not done.is_set():
            call(url + "/tickets?limit=50", "GET")

    started = time.perf_counter()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    reading = threading.Thread(target=reader)
    reading.start()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    seconds = time.perf_counter() - started
    deadline = time.monotonic() + WAIT_S
    while metrics(url)["fmlab_ticket_projection_backlog"] and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    reading.join()
    figures = metrics(url)
    latencies.sort()
    return Run(
        name,
        len(latencies),
        seconds,
        lag.percentile([x * 1000 for x in latencies], 50),
        lag.percentile([x * 1000 for x in latencies], 99),
        figures,
    )


def section(runs: list[Run]) -> str:
    about = (
        "Written by `make bench-tickets`. A real `fmlab serve` on a fresh database file on "
        f"loopback; {CLIENTS} clients at once, each opening {TICKETS_PER_CLIENT} tickets "
        "and changing each twice over HTTP (three commands a ticket), while a reader lists "
        f"tickets: paced at {PACED:.0f} commands a second in all, then as a burst (each "
        "client sends its next command as soon as the last is answered). The projector is "
        "the server's own thread (woken by each command it commits) or a separate `fmlab "
        "project` process (which polls every 50 ms). Projection lag is the server's own "
        "figure from `/metrics`: per version, from the command's commit to the projection "
        "that first carried it. The contract "
        f"is `READ_LAG_MS` = {lag.READ_LAG_MS} ms."
    )
    rows = [
        "| projector | commands | commands/s | command p50 / p99 | lag p50 / p99 "
        "| reads | reads over the contract | backlog at the end |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        m = run.metrics
        rows.append(
            f"| {run.name} | {run.commands:,} | {run.per_s:,.0f} "
            f"| {run.latency_p50_ms:.1f} / {run.latency_p99_ms:.1f} ms "
            f"| {m[LAG_P50]:.1f} / "
            f"{m[LAG_P99]:.1f} ms "
            f"| {m['fmlab_ticket_reads_total']:,.0f} "
            f"| {m['fmlab_ticket_reads_over_contract_total']:,.0f} "
            f"| {m['fmlab_ticket_projection_backlog']:,.0f} |"
        )
    facts = {
        "CPUs": str(os.cpu_count()),
        "platform": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
    }
    lines = [
        HEADING,
        "",
        *_wrapped(about),
        "",
        *rows,
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in facts.items()),
    ]
    return "\n".join(lines) + "\n"


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=90, break_on_hyphens=False)


def main() -> None:
    runs = [
        measure(f"own thread, paced at {PACED:.0f} commands/s", False, rate=PACED),
        measure(f"separate process, paced at {PACED:.0f} commands/s", True, rate=PACED),
        measure("own thread, a burst", False),
        measure("separate process, a burst", True),
    ]
    text = section(runs)
    print(text, end="")
    doc.write(HEADING, text)
    print(f"\nwrote the {HEADING.removeprefix('## ')} section of docs/{doc.DOC.name}")


if __name__ == "__main__":
    main()
