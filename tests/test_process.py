"""Real worker processes (`fmlab worker`): graceful shutdown, its log, a short crash torture.

These run real processes on a real file with the real clock. A test waits on the database
for what it needs (a job RUNNING, every job ended), bounded by a deadline; nothing here
sleeps for a fixed time to let something happen.
"""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime import invariants
from runtime.clock import SystemClock
from runtime.queue import Queue
from runtime.store import Store
from runtime.worker import STEPS
from tests.backends import BACKENDS, server_url
from torture import run as torture
from torture.handlers import KIND

FMLAB = Path(sys.executable).parent / "fmlab"
WAIT_S = 30.0
OPEN = "('LEASED', 'IN_PROGRESS', 'COMMITTED')"


def submit(db: Path, jobs: int, ms: int) -> None:
    store = Store.open(db)
    queue = Queue(store, SystemClock(), random.Random(0))
    for _ in range(jobs):
        queue.submit(KIND, {"ms": ms})
    store.close()


def worker(db: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(FMLAB), "worker", "--db", str(db), "--handlers", "torture.handlers:HANDLERS",
         "--lease-s", "2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def until(db: Path, sql: str, what: str) -> None:
    """Poll `sql` until it gives a true first column. (Not a read-only Store: opened while
    no writer is attached, that reads the file as immutable and never sees a change.)"""
    store = Store.open(db, create=False)
    try:
        deadline = time.monotonic() + WAIT_S
        while store.one(sql)[0] == 0:
            assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
            time.sleep(0.01)
    finally:
        store.close()


def rows(db: Path, sql: str) -> list[tuple]:
    store = Store.open(db, read_only=True)
    try:
        return [tuple(row) for row in store.tuples(sql)]
    finally:
        store.close()


def test_sigterm_finishes_the_attempts_in_hand_and_leaves_no_lease_held(tmp_path):
    """Two threads, each mid-handler (300 ms of work) when SIGTERM arrives. Each finishes
    its attempt (commit and ack), takes no other, and the process exits 0. No execution is
    left open, no job RUNNING; the jobs never started are PENDING, ready for the next
    worker, which finishes them all."""
    db = tmp_path / "lab.db"
    submit(db, jobs=6, ms=300)
    process = worker(db, "--concurrency", "2")
    until(db, "SELECT count(*) = 2 FROM jobs WHERE state = 'RUNNING'", "two jobs running")
    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=WAIT_S)

    assert process.returncode == 0, log
    states = dict(rows(db, "SELECT state, count(*) FROM jobs GROUP BY state"))
    assert set(states) == {"SUCCEEDED", "PENDING"} and sum(states.values()) == 6
    assert states["SUCCEEDED"] >= 2  # the two in hand (a loaded machine may let one more in)
    assert rows(db, f"SELECT id FROM executions WHERE status IN {OPEN}") == []
    store = Store.open(db, read_only=True)
    assert invariants.check(store) == []
    store.close()

    again = worker(db, "--concurrency", "2")
    until(db, "SELECT count(*) = 6 FROM jobs WHERE state = 'SUCCEEDED'", "all six done")
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=WAIT_S) == 0
    store = Store.open(db, read_only=True)
    assert invariants.check(store, final=True) == []
    store.close()


def test_each_step_is_one_json_line_on_stderr(tmp_path):
    db = tmp_path / "lab.db"
    submit(db, jobs=1, ms=0)
    process = worker(db, "--name", "solo")
    until(db, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'", "the job done")
    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=WAIT_S)

    ready, *records = [json.loads(line) for line in log.splitlines()]
    assert (ready["worker"], ready["step"]) == ("solo", "ready")
    assert [(r["worker"], r["step"], r["job"]) for r in records] == [
        ("solo.1", step, 1) for step in STEPS
    ]
    assert all(isinstance(r["at"], float) for r in records)


def test_a_heartbeat_keeps_a_slow_handler_s_lease(tmp_path):
    """The handler takes 2.5 s; the lease is 1.5 s. The heartbeat extends it every half
    second, so the rival process never finds it expired, and the job succeeds at its first
    attempt."""
    db = tmp_path / "lab.db"
    submit(db, jobs=1, ms=2_500)
    process = worker(db, "--lease-s", "1.5")
    rival = worker(db, "--lease-s", "1.5", "--name", "rival")
    until(db, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'", "the job done")
    for each in (process, rival):
        each.send_signal(signal.SIGTERM)
        assert each.wait(timeout=WAIT_S) == 0

    assert rows(db, "SELECT attempts FROM jobs") == [(1,)]
    extended = rows(db, "SELECT count(*) FROM events WHERE type = 'lease.extended'")[0][0]
    assert extended >= 3  # 2.5 s of work, a beat every 0.5 s


def test_a_heartbeat_keeps_every_lease_of_a_batch(tmp_path):
    """A batch of four jobs of 0.4 s each takes 1.6 s; the lease is 1.5 s, and a beat is
    due every 0.5 s, longer than any one handler runs. While one job's handler runs, the
    others wait in the worker's hands (done and waiting for the batch's completion, or not
    yet begun): the heartbeat extends all four, on a beat counted from when the batch was
    taken, so the rival finds none expired and every job succeeds at its first attempt."""
    db = tmp_path / "lab.db"
    submit(db, jobs=4, ms=400)
    process = worker(db, "--lease-s", "1.5", "--batch", "4")
    until(db, "SELECT count(*) FROM executions", "the batch leased")
    rival = worker(db, "--lease-s", "1.5", "--name", "rival")
    until(db, "SELECT count(*) = 4 FROM jobs WHERE state = 'SUCCEEDED'", "the batch done")
    for each in (process, rival):
        each.send_signal(signal.SIGTERM)
        assert each.wait(timeout=WAIT_S) == 0

    assert rows(db, "SELECT attempts FROM jobs ORDER BY id") == [(1,)] * 4
    assert rows(db, "SELECT DISTINCT worker FROM executions") == [("worker.1",)]
    lost = "SELECT count(*) FROM events WHERE type IN ('lease.lost', 'lease.expired')"
    assert rows(db, lost) == [(0,)]
    assert rows(
        db, "SELECT count(DISTINCT execution_id) FROM events WHERE type = 'lease.extended'"
    ) == [(4,)]


@pytest.mark.campaign
@pytest.mark.parametrize("db", BACKENDS)
def test_a_short_crash_torture_loses_nothing_and_duplicates_nothing(db):
    """Two trials of the torture (`make torture` runs twenty; CI runs five on each
    backend): worker processes killed with SIGKILL mid-run and started again; every job
    ends, no effect twice, integrity ok. A campaign: `make gate` runs it."""
    if db == "postgresql":
        server_url()  # skips (fails, under CI) without a server
    argv = ["--trials", "2", "--jobs", "120", "--kills", "4", "--db", db]
    assert torture.main(argv) == 0


@pytest.mark.parametrize(
    "argv,error",
    [
        (["worker", "--db", "missing.db"], "missing.db"),
        (["worker", "--handlers", "no.such.module:X"], "cannot load handlers"),
        (["worker", "--kinds", "nope"], "no handler for job kinds nope"),
        (["worker", "--lease-s", "0"], "seconds must be above 0"),
        (["worker", "--without", "no_such_lever"], "invalid choice"),
    ],
)
def test_bad_input_to_the_worker_is_one_line_and_exit_2(tmp_path, argv, error):
    done = subprocess.run(
        [str(FMLAB), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and error in done.stderr
    assert list(tmp_path.iterdir()) == []
