"""Effects: what a job does to the world, recorded so duplicates are facts, not guesses.

Every job in this runtime exists to cause one effect (award points, charge a card, send a
mail). An effect has a sink (where it lands) and a key (which logical effect it is; by
default one per job). The sink records every application durably with the job and the
execution that caused it, so "was this applied twice?" is a query, not a suspicion.

An *external* effect lands in another system (a card processor, a mail server). No
transaction spans both, so it is called on its own, before the commit, and a call can
apply and still fail on the way back (a timeout). Its defence is the idempotency key: the
call carries the effect's key, and the other system answers a repeat with the first
result instead of applying it again (Stripe's `Idempotency-Key`, for one).
"""

from dataclasses import dataclass, field
from typing import Any

from runtime.store import Store, Tx, dumps


@dataclass(frozen=True)
class Effect:
    sink: str
    key: str
    detail: dict[str, Any] = field(default_factory=dict)
    external: bool = False
    """It lands in another system: called at `effect_applied`, outside any commit."""


@dataclass(frozen=True)
class AppliedEffect:
    id: int
    sink: str
    key: str
    job_id: int
    execution_id: int
    at: float


def apply(tx: Tx, at: float, effect: Effect, *, job_id: int, execution_id: int, worker: str) -> int:
    """Record one application of `effect` and log it, inside the caller's transaction.

    The `effect.applied` event of an external effect says so (`external`): INV_002 gives
    its job the retries to confirm it."""
    effect_id = tx.insert(
        "INSERT INTO effects (sink, key, job_id, execution_id, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (effect.sink, effect.key, job_id, execution_id, dumps(effect.detail), at),
    )
    tx.event(
        at,
        "effect.applied",
        job=job_id,
        execution=execution_id,
        worker=worker,
        sink=effect.sink,
        key=effect.key,
        effect=effect_id,
        **({"external": True} if effect.external else {}),
    )
    return effect_id


def find(tx: Tx, effect: Effect, *, job_id: int | None) -> AppliedEffect | None:
    """The first application of this job's `effect` (of any job's, when `job_id` is None:
    an external system knows its idempotency keys, not our jobs)."""
    if job_id is None:
        row = tx.one(
            "SELECT id, sink, key, job_id, execution_id, at FROM effects"
            " WHERE sink = ? AND key = ? ORDER BY id LIMIT 1",
            (effect.sink, effect.key),
        )
    else:
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
