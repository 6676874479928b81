"""Health: how the intents and the queue stand right now, in numbers a person can act on.

Everything is computed from the rows at the moment of asking, so it is right on an empty
database (zeros, not missing values) and never stale.
"""

from dataclasses import dataclass, field

from runtime import states
from runtime.intents.lifecycle import DEAD, FAILED, SYNC_STATES, statuses
from runtime.store import Store


@dataclass(frozen=True)
class Health:
    intents: int
    by_sync: dict[str, int]
    """Intents per sync state; every state present, zero or not."""
    dead_letters: int
    """Jobs of any kind that are DEAD: the dead-letter queue."""
    backlog: dict[str, int] = field(default_factory=dict)
    """Jobs waiting or running, per kind."""
    oldest_failure_intent: int | None = None
    oldest_failure_age_s: float = 0.0
    """How long the oldest unresolved failure (an intent FAILED or DEAD) has been failing."""
    most_retried_intent: int | None = None
    most_retries: int = 0


def health(store: Store, now: float) -> Health:
    rows = statuses(store)
    by_sync = dict.fromkeys(SYNC_STATES, 0)
    for row in rows:
        by_sync[row.sync] += 1
    unresolved = [
        row for row in rows if row.sync in (FAILED, DEAD) and row.first_failed_at is not None
    ]
    oldest = min(unresolved, key=lambda row: (row.first_failed_at, row.id), default=None)
    retried = max(rows, key=lambda row: (row.retry_count, -row.id), default=None)
    backlog = {
        kind: count
        for kind, count in store.tuples(
            "SELECT kind, count(*) FROM jobs WHERE state IN (?, ?) GROUP BY kind ORDER BY kind",
            (states.PENDING, states.RUNNING),
        )
    }
    dead = store.one("SELECT count(*) FROM jobs WHERE state = ?", (states.DEAD,))[0]
    return Health(
        intents=len(rows),
        by_sync=by_sync,
        dead_letters=dead,
        backlog=backlog,
        oldest_failure_intent=None if oldest is None else oldest.id,
        oldest_failure_age_s=0.0 if oldest is None else now - (oldest.first_failed_at or 0.0),
        most_retried_intent=None if retried is None or not retried.retry_count else retried.id,
        most_retries=0 if retried is None else retried.retry_count,
    )
