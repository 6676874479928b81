"""The queues `make bench` measures, each behind the same three verbs.

Every adapter opens a fresh SQLite file in WAL mode at the `synchronous` level it is
given, then `submit(i)` one no-op job durably and `finish()` takes the next job, runs it
(a no-op) and acknowledges it durably, returning how many it finished (0 when the queue
is empty; the runtime's batched worker may finish several). The peers are driven through
their own public APIs, as their own workers drive them; only the durability pragma is set
from outside, so every system commits the same way.

- bare sqlite3: the limit. One INSERT committed per submit, one UPDATE committed per
  acknowledgement: the fewest durable commits a queue with acknowledgement can make.
- failure-mode-lab: the runtime with every guard on, as `fmlab worker` runs it
  (runtime.worker.Worker.attempts). A submit is a transaction (the job and its event); a
  job is then leased and started in one transaction and completed (effect, commit and
  acknowledgement, fenced, each move with its event) in another.
- failure-mode-lab, batched: the same, with the runtime's fast paths: jobs submitted 100
  to a transaction (`Queue.submit_many`), and a worker that leases 8 at a time and
  completes the 8 in one transaction (`--batch 8`): two transactions for eight jobs.
- huey (SqliteHuey): enqueue; `dequeue` deletes the task in a transaction, then
  `execute` runs it. Acknowledged on receipt: at-most-once.
- persist-queue (SQLiteAckQueue): put; get marks the row unacked; ack marks it acked.
- litequeue: put; pop locks the row (UPDATE ... RETURNING); done marks it done.
"""

import random
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from runtime.clock import SystemClock
from runtime.effects import Effect
from runtime.queue import Job, Queue
from runtime.store import Store
from runtime.worker import Worker

KIND = "bench.noop"


class Peer(Protocol):
    name: str

    def submit(self, i: int) -> None: ...

    def finish(self) -> int: ...

    def pragmas(self) -> tuple[str, str]:
        """(journal_mode, synchronous) as the connection reports them."""
        ...

    def close(self) -> None: ...


def _pragmas(conn: sqlite3.Connection) -> tuple[str, str]:
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
        conn.execute("PRAGMA synchronous").fetchone()[0]
    ]
    return journal.upper(), level


class BareSqlite:
    name = "bare sqlite3"

    def __init__(self, folder: Path, synchronous: str) -> None:
        self.conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.conn.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, i INTEGER NOT NULL,"
            " done INTEGER NOT NULL DEFAULT 0)"
        )
        self.conn.execute("CREATE INDEX jobs_todo ON jobs (done, id)")

    def submit(self, i: int) -> None:
        self.conn.execute("INSERT INTO jobs (i) VALUES (?)", (i,))

    def finish(self) -> int:
        row = self.conn.execute("SELECT id FROM jobs WHERE done = 0 ORDER BY id LIMIT 1")
        found = row.fetchone()
        if found is None:
            return 0
        self.conn.execute("UPDATE jobs SET done = 1 WHERE id = ?", (found[0],))
        return 1

    def pragmas(self) -> tuple[str, str]:
        return _pragmas(self.conn)

    def close(self) -> None:
        self.conn.close()


def noop(job: Job) -> Effect | None:
    return None


class Lab:
    name = "failure-mode-lab"
    submit_batch = 1
    lease_batch = 1

    def __init__(self, folder: Path, synchronous: str) -> None:
        self.path = folder / "lab.db"
        self.store = Store.open(self.path, synchronous=synchronous)
        self.queue = Queue(self.store, SystemClock(), random.Random(0))
        self.worker = Worker("bench.1", self.queue, {KIND: noop})
        self._waiting: list[dict[str, int]] = []

    def submit(self, i: int) -> None:
        if self.submit_batch == 1:
            self.queue.submit(KIND, {"i": i})
            return
        self._waiting.append({"i": i})
        if len(self._waiting) == self.submit_batch:
            self.flush()

    def flush(self) -> None:
        """Submit what a batching producer still holds."""
        if self._waiting:
            self.queue.submit_many(KIND, self._waiting)
            self._waiting = []

    def finish(self) -> int:
        self.flush()
        steps = list(self.worker.attempts(self.lease_batch))
        if steps.count("acked") != steps.count("leased"):
            raise RuntimeError(f"a no-op job did not finish: {steps}")
        return steps.count("acked")  # each job's latency is read back from the database

    def pragmas(self) -> tuple[str, str]:
        return _pragmas(self.store._conn)

    def close(self) -> None:
        self.store.close()


class LabBatched(Lab):
    name = "failure-mode-lab, batched"
    submit_batch = 100
    lease_batch = 8


class Huey:
    name = "huey"

    def __init__(self, folder: Path, synchronous: str) -> None:
        from huey import SqliteHuey

        self.huey = SqliteHuey("bench", filename=str(folder / "huey.db"), fsync=None)
        self.huey.storage.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.task = self.huey.task()(_noop)

    def submit(self, i: int) -> None:
        self.task(i)

    def finish(self) -> int:
        task = self.huey.dequeue()
        if task is None:
            return 0
        self.huey.execute(task)
        return 1

    def pragmas(self) -> tuple[str, str]:
        return _pragmas(self.huey.storage.conn)

    def close(self) -> None:
        self.huey.storage.close()


def _noop(i: int) -> None:
    return None


class PersistQueue:
    name = "persist-queue"

    def __init__(self, folder: Path, synchronous: str) -> None:
        from persistqueue import SQLiteAckQueue

        self.queue = SQLiteAckQueue(str(folder / "persist"), multithreading=False)
        self.queue._conn.execute(f"PRAGMA synchronous = {synchronous}")

    def submit(self, i: int) -> None:
        self.queue.put({"i": i})

    def finish(self) -> int:
        try:
            item = self.queue.get(block=False, raw=True)
        except Exception:  # noqa: BLE001 - persistqueue.Empty: the queue is drained
            return 0
        self.queue.ack(id=item["pqid"])
        return 1

    def pragmas(self) -> tuple[str, str]:
        return _pragmas(self.queue._conn)

    def close(self) -> None:
        self.queue.close()


class LiteQueue:
    name = "litequeue"

    def __init__(self, folder: Path, synchronous: str) -> None:
        from litequeue import LiteQueue as Queue_

        self.queue = Queue_(folder / "litequeue.db")
        self.queue.conn.execute(f"PRAGMA synchronous = {synchronous}")

    def submit(self, i: int) -> None:
        self.queue.put(str(i))

    def finish(self) -> int:
        message = self.queue.pop()
        if message is None:
            return 0
        self.queue.done(message.message_id)
        return 1

    def pragmas(self) -> tuple[str, str]:
        return _pragmas(self.queue.conn)

    def close(self) -> None:
        self.queue.close()


PEERS: tuple[type, ...] = (BareSqlite, Lab, LabBatched, Huey, PersistQueue, LiteQueue)


def now() -> float:
    return time.time()


def lab_latencies(path: Path) -> list[float]:
    """Submit to SUCCEEDED, per job, from the lab's own rows (stamped by the same clock)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT updated_at - created_at FROM jobs WHERE state = 'SUCCEEDED'")
        return [row[0] for row in rows]
    finally:
        conn.close()
