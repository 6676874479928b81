"""Effects: what a job does to the world, recorded so duplicates are facts, not guesses.

Every job in this runtime exists to cause one effect (award points, charge a card, send a
mail). An effect has a sink (where it lands) and a key (which logical effect it is; by
default one per job). The sink records every application durably with the job and the
execution that caused it, so "was this applied twice?" is a query, not a suspicion.
"""

from dataclasses import dataclass, field
from typing import Any

from runtime.store import Store, Tx, dumps


@dataclass(frozen=True)
class Effect:
    sink: str
    key: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppliedEffect:
    id: int
    sink: str
    key: str
    job_id: int
    execution_id: int
    at: float


def apply(tx: Tx, at: float, effect: Effect, *, job_id: int, execution_id: int, worker: str) -> int:
    """Record one application of `effect` and log it, inside the caller's transaction."""
    cursor = tx.execute(
        "INSERT INTO effects (sink, key, job_id, execution_id, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (effect.sink, effect.key, job_id, execution_id, dumps(effect.detail), at),
    )
    effect_id = cursor.lastrowid
    assert effect_id is not None
    tx.event(
        at,
        "effect.applied",
        job=job_id,
        execution=execution_id,
        worker=worker,
        sink=effect.sink,
        key=effect.key,
        effect=effect_id,
    )
    return effect_id


def find(tx: Tx, effect: Effect, *, job_id: int) -> AppliedEffect | None:
    """The first application of this job's `effect`, if any."""
    row = tx.one(
        "SELECT id, sink, key, job_id, execution_id, at FROM effects"
        " WHERE sink = ? AND key = ? AND job_id = ? ORDER BY id LIMIT 1",
        (effect.sink, effect.key, job_id),
    )
    return AppliedEffect(*row) if row else None


def applied(store: Store, job_id: int | None = None) -> list[AppliedEffect]:
    """Every recorded application, oldest first (of one job when `job_id` is given)."""
    sql = "SELECT id, sink, key, job_id, execution_id, at FROM effects"
    if job_id is None:
        rows = store.all(sql + " ORDER BY id")
    else:
        rows = store.all(sql + " WHERE job_id = ? ORDER BY id", (job_id,))
    return [AppliedEffect(*row) for row in rows]
