"""The queue's guarded moves: each state change one row update that refuses a move the
state machine forbids or a move from a state the row is not in, and the events that log
a lease's moves. Every function runs inside the caller's transaction (runtime.queue).
"""

import functools
from typing import Any

from runtime import accounts, states
from runtime.effects import Effect
from runtime.errors import IllegalTransition, UnknownJob
from runtime.records import Lease
from runtime.store import Tx


def lock_effect(tx: Tx, effect: Effect) -> None:
    """Hold what applying `effect` reads and then writes: its key (so two attempts cannot
    both find it unapplied) and a credit's account. Taken before the transaction logs
    anything: a backend that orders its log holds the log's head from the first event to
    the commit, and a writer that waited for a lock while holding the head could deadlock
    with one holding that lock and waiting for the head."""
    tx.lock_key(f"effect {effect.sink} {effect.key}")
    if effect.sink == accounts.SINK:
        tx.lock_key(f"account {effect.detail['account']}")


def lost_reason(tx: Tx, lease: Lease, now: float) -> str | None:
    row = tx.one(
        "SELECT j.state, j.fencing_token, e.status, e.lease_expires_at FROM jobs j"
        " JOIN executions e ON e.job_id = j.id WHERE j.id = ? AND e.id = ?",
        (lease.job_id, lease.execution_id),
    )
    if row is None:
        raise UnknownJob(f"no execution {lease.execution_id} of job {lease.job_id}")
    if row["fencing_token"] != lease.fencing_token:
        return f"token {lease.fencing_token} is stale; job {lease.job_id} is at {row[1]}"
    if row["status"] not in states.EXECUTION_OPEN or row["state"] != states.RUNNING:
        return f"execution is {row['status']}, job is {row['state']}"
    if row["lease_expires_at"] <= now:
        return f"lease expired at {row['lease_expires_at']:.3f}"
    return None


def held_by(lease: Lease) -> dict[str, Any]:
    return {"job": lease.job_id, "execution": lease.execution_id, "worker": lease.worker}


def log_started(tx: Tx, now: float, lease: Lease) -> None:
    move_execution(tx, lease.execution_id, states.LEASED, states.IN_PROGRESS)
    tx.event(
        now,
        "execution.started",
        **held_by(lease),
        execution_state=[states.LEASED, states.IN_PROGRESS],
    )


def succeed(tx: Tx, now: float, lease: Lease) -> None:
    move_execution(tx, lease.execution_id, states.COMMITTED, states.DONE, finished_at=now)
    move_job(tx, lease.job_id, states.RUNNING, states.SUCCEEDED, now)


def log_succeeded(tx: Tx, now: float, lease: Lease) -> None:
    tx.event(
        now,
        "job.succeeded",
        **held_by(lease),
        job_state=[states.RUNNING, states.SUCCEEDED],
        execution_state=[states.COMMITTED, states.DONE],
    )


def job_row(tx: Tx, job_id: int) -> Any:
    row = tx.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise UnknownJob(f"no job {job_id}")
    return row


def move_job(tx: Tx, job_id: int, before: str, after: str, now: float, **columns: Any) -> None:
    """Move a job between states; refuses illegal moves and moves from a state it is not in."""
    states.require_job_transition(before, after)
    _update(tx, "jobs", job_id, "state", before, after, updated_at=now, **columns)


def move_execution(
    tx: Tx,
    execution_id: int,
    before: str,
    after: str,
    *,
    through: str | None = None,
    **columns: Any,
) -> None:
    """Move an execution between states; `through`: by way of that state, both moves legal,
    in one row update (each move is still logged by its own event)."""
    if through is None:
        states.require_execution_transition(before, after)
    else:
        states.require_execution_transition(before, through)
        states.require_execution_transition(through, after)
    _update(tx, "executions", execution_id, "status", before, after, **columns)


def _update(
    tx: Tx, table: str, row_id: int, column: str, before: str, after: str, **columns: Any
) -> None:
    cursor = tx.execute(
        _update_sql(table, column, tuple(columns)), (after, *columns.values(), row_id, before)
    )
    if cursor.rowcount != 1:
        raise IllegalTransition(f"{table} {row_id} is not {before}; cannot move it to {after}")


@functools.cache
def _update_sql(table: str, column: str, names: tuple[str, ...]) -> str:
    """A guarded state move's UPDATE, built once per shape (the same few, thousands of times)."""
    sets = ", ".join([f"{column} = ?", *(f"{name} = ?" for name in names)])
    return f"UPDATE {table} SET {sets} WHERE id = ? AND {column} = ?"
