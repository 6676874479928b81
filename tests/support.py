"""What the runtime-level tests share: one set of explicit policies, one order, one queue,
and a database as the first schema left it.

The policies are spelled out in full, so a changed default in runtime/policies.py cannot
silently change what these tests prove.
"""

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.policies import Policies
from runtime.queue import Queue
from runtime.schema import APPLICATION_ID, MIGRATIONS, statements
from runtime.store import Store

POLICIES = Policies(
    commit_boundary=True,
    lease_s=30.0,
    attempts_max=3,
    retry_delay_s_base=1.0,
    retry_delay_s_max=60.0,
)
POINTS = Effect(sink="ledger", key="order-1001", detail={"points": 50})
ORDER = {"order": 1001, "points": 50}
SUCCEEDED_ONCE = [
    "job.submitted",
    "job.leased",
    "execution.started",
    "effect.applied",
    "execution.committed",
    "job.succeeded",
]
"""The log of one job that succeeded at its first attempt, with its effect."""


def memory_store() -> Store:
    return Store.memory()


STORES: Callable[[], Any] = memory_store
"""What `new_store` makes: an in-memory SQLite store, unless a test runs on PostgreSQL
(the `backend` fixture, tests/backends.py)."""


def new_store() -> Any:
    """A fresh, empty lab database on the backend of the test."""
    return STORES()


def new_queue(policies: Policies = POLICIES, *, seed: int = 0) -> tuple[Queue, SimClock]:
    """A queue over a fresh store, on a SimClock at 0.0, with seeded jitter."""
    clock = SimClock(start=0.0)
    return Queue(new_store(), clock, random.Random(seed), policies), clock


def schema_1_file(path: Path, *, with_job: bool = False) -> None:
    """A lab database as the first schema left it (no accounts, no intents), made by hand:
    what a file written by an older lab looks like when a newer one opens it."""
    conn = sqlite3.connect(path)
    for statement in statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    if with_job:
        conn.execute(
            "INSERT INTO jobs (kind, payload, state, max_attempts, run_at, created_at, updated_at)"
            " VALUES ('award_points', '{}', 'PENDING', 3, 0.0, 0.0, 0.0)"
        )
    conn.commit()
    conn.close()
