"""Where each intent stands, derived from its jobs and the log; never stored.

An intent's sync is PENDING until its first attempt fails or succeeds, SYNCED once the
sync job succeeded, FAILED while it is being retried, and DEAD once its budget is spent
(until an operator redrives it). Nothing here writes: the answer is a query over what the
queue already recorded, so it cannot drift from it.
"""

from dataclasses import dataclass

from runtime.intents.log import PROJECT, SYNC
from runtime.store import Store

PENDING, SYNCED, FAILED, DEAD = "PENDING", "SYNCED", "FAILED", "DEAD"
SYNC_STATES = (PENDING, SYNCED, FAILED, DEAD)

_STATUS = f"""
SELECT i.id, i.type, i.recorded_at,
       s.state AS sync_state, s.last_error,
       (SELECT count(*) FROM executions e
         WHERE e.job_id = s.id AND e.status IN ('FAILED', 'ABORTED')) AS failures,
       (SELECT min(v.at) FROM events v
         WHERE v.job_id = s.id AND json_extract(v.detail, '$.error') IS NOT NULL)
         AS first_failed_at,
       p.state AS projection_state
  FROM intents i
  LEFT JOIN jobs s ON s.idempotency_key = '{SYNC}-' || i.id
  LEFT JOIN jobs p ON p.idempotency_key = '{PROJECT}-' || i.id
"""


@dataclass(frozen=True)
class IntentStatus:
    id: int
    type: str
    recorded_at: float
    sync: str
    retry_count: int
    """Attempts of its sync that failed or lost their lease, over its whole history."""
    last_error: str | None
    first_failed_at: float | None
    projected: bool


def statuses(store: Store, *, newest: int | None = None) -> list[IntentStatus]:
    """Every intent's status, oldest first; or the `newest` n, newest first. A database
    from before the intent log (schema 2 or older, opened read-only) has none."""
    if store.schema_version() < 3:
        return []
    order = "ORDER BY i.id" if newest is None else f"ORDER BY i.id DESC LIMIT {int(newest)}"
    return [_status(row) for row in store.all(f"{_STATUS} {order}")]


def status_of(store: Store, intent_id: int) -> IntentStatus | None:
    if store.schema_version() < 3:
        return None
    row = store.one(f"{_STATUS} WHERE i.id = ?", (intent_id,))
    return None if row is None else _status(row)


def _status(row) -> IntentStatus:
    state, failures = row["sync_state"], row["failures"]
    if state == "SUCCEEDED":
        sync = SYNCED
    elif state == "DEAD":
        sync = DEAD
    else:
        sync = FAILED if failures else PENDING
    return IntentStatus(
        id=row["id"],
        type=row["type"],
        recorded_at=row["recorded_at"],
        sync=sync,
        retry_count=failures,
        last_error=row["last_error"],
        first_failed_at=row["first_failed_at"],
        projected=row["projection_state"] == "SUCCEEDED",
    )
