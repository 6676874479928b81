"""Two worker processes on one database file never sync the same intent twice.

Real processes, a real file, the real clock: `fmlab work` twice at once over 500 intents.
Each lease is one transaction (BEGIN IMMEDIATE), so the two processes queue on SQLite's
write lock and never take the same job; each call to the sync target is logged
(`dependency.called`), so "synced twice" is a count, not a guess.

Sharing is part of the proof: a run where one process did everything proves nothing about
two at once. SQLite's write lock is not fair, and with SQLite's own busy handler (which
looks again only after growing sleeps, up to 100 ms) one process starved the other in 16 of
20 runs. The store now looks for the lock every millisecond (runtime.store._patiently), and
the same 20 runs split the work evenly enough: the busiest process did at most 66%. So a
run must leave each process at least a tenth of the work; a machine loaded enough to
starve one process anyway gets three runs. Both start held at the write lock: the test
holds it until both processes have the file open, so neither has finished before the
other has begun, however loaded the machine.
"""

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from runtime import invariants
from runtime.clock import SystemClock
from runtime.intents import system
from runtime.intents.log import SYNC_TARGET, record
from runtime.store import Store

FMLAB = Path(sys.executable).parent / "fmlab"
INTENTS = 500
RUNS_MAX = 3
SHARE_MIN = 0.1
OPEN_WAIT_S = 30.0


def wait_until_open(pid: int, db: Path) -> None:
    """Until process `pid` has the database file open (Linux: its /proc fd table): then it
    is past its start-up and at the write lock. On a loaded machine a process can take
    seconds to start, and the first could finish every job before the second has begun."""
    deadline, target = time.monotonic() + OPEN_WAIT_S, db.resolve()
    while time.monotonic() < deadline:
        fds = Path(f"/proc/{pid}/fd")
        try:
            if any(link.resolve() == target for link in fds.iterdir()):
                return
        except OSError:  # a descriptor closed while we looked: look again
            pass
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not open {db} within {OPEN_WAIT_S} s")


def two_processes_at_once(db: Path) -> list[int]:
    """Record the intents, run two `fmlab work` processes at once, check the database;
    returns how many attempts each process ran."""
    store = Store.open(db)
    queue = system.queue(store, SystemClock())
    for n in range(INTENTS):
        record(queue, "order.placed", {"order": n})
    store.close()

    gate = sqlite3.connect(db, isolation_level=None)
    gate.execute("BEGIN IMMEDIATE")  # both processes queue on the write lock until it opens
    workers = [
        subprocess.Popen(
            [str(FMLAB), "work", "--db", str(db), "--seed", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        wait_until_open(worker.pid, db)
    gate.execute("ROLLBACK")
    gate.close()
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    store = Store.open(db, read_only=True)
    try:
        calls = Counter(
            e.detail["key"]
            for e in store.events()
            if e.type == "dependency.called" and e.detail["sink"] == SYNC_TARGET
        )
        assert len(calls) == INTENTS
        assert set(calls.values()) == {1}, calls.most_common(3)  # each intent synced once
        assert {row[0] for row in store.tuples("SELECT state FROM jobs")} == {"SUCCEEDED"}
        assert invariants.check(store, final=True) == []
    finally:
        store.close()
    attempts = [int(out.split()[0]) for out, _ in outputs]  # "N attempts run; ..."
    assert sum(attempts) == 2 * INTENTS  # a projection and a sync each, nothing twice
    return attempts


def test_two_processes_share_the_work_and_sync_each_intent_once(tmp_path):
    splits = []
    for run in range(RUNS_MAX):
        splits.append(two_processes_at_once(tmp_path / f"lab{run}.db"))
        if min(splits[-1]) >= SHARE_MIN * sum(splits[-1]):
            return
    raise AssertionError(f"one process starved the other in every run: {splits}")
