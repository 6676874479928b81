"""The intent log: record an intent and its follow-up jobs in one transaction; annotate.

Recording is the only write an intent ever gets. Its follow-up jobs are enqueued in the
same transaction (a transactional outbox), so an acknowledged intent always has its jobs
and a crash before the commit leaves neither. The jobs carry the intent's type and payload
so that their handlers need nothing but the job.
"""

import json
from dataclasses import dataclass
from typing import Any

from runtime.effects import Effect
from runtime.errors import UsageError
from runtime.queue import Job, Queue, validated_payload
from runtime.store import Store

PROJECT = "intent.project"
"""The job that derives domain state from an intent."""
SYNC = "intent.sync"
"""The job that sends an intent to the outside target."""
PROJECTION = "projection"
"""The sink of derived domain state: one record per intent."""
SYNC_TARGET = "sync_target"
"""The sink of the outside system intents are synced to (an external effect)."""
ANNOTATED = "annotation.added"


class UnknownIntent(UsageError):
    """Raised for an intent id that does not exist."""


class UnknownEvent(UsageError):
    """Raised for an event seq that does not exist."""


@dataclass(frozen=True)
class Intent:
    id: int
    type: str
    payload: dict[str, Any]
    recorded_at: float


def record(queue: Queue, type: str, payload: dict[str, Any]) -> int:
    """Append the intent and enqueue its projection and its sync, all in one transaction;
    returns the intent's id. Once this returns, the intent survives any crash."""
    if not isinstance(type, str) or not type.strip():
        raise UsageError(f"intent type must be a non-empty string, got {type!r}")
    payload_json = validated_payload(type, payload)
    now = queue.clock.now()
    with queue.store.transaction() as tx:
        cursor = tx.execute(
            "INSERT INTO intents (type, payload, recorded_at) VALUES (?, ?, ?)",
            (type, payload_json, now),
        )
        intent_id = cursor.lastrowid
        assert intent_id is not None
        tx.event(now, "intent.recorded", intent=intent_id, intent_type=type)
        follow_up = {"intent": intent_id, "type": type, "payload": payload}
        for kind in (PROJECT, SYNC):
            queue.enqueue(tx, kind, follow_up, idempotency_key=f"{kind}-{intent_id}")
    return intent_id


def get(store: Store, intent_id: int) -> Intent:
    row = store.one("SELECT * FROM intents WHERE id = ?", (intent_id,))
    if row is None:
        raise UnknownIntent(f"no intent {intent_id}")
    return Intent(row["id"], row["type"], json.loads(row["payload"]), row["recorded_at"])


def annotate(queue: Queue, on: str, target: int, note: str, *, author: str) -> int:
    """Append an operator's note on an intent (`on="intent"`) or an event (`on="event"`);
    returns the note's event seq. A note on something that does not exist is refused."""
    if not note.strip():
        raise UsageError("a note must say something")
    if not author.strip():
        raise UsageError("a note needs an author")
    if on == "intent":
        get(queue.store, target)
    elif on == "event":
        if queue.store.one("SELECT 1 FROM events WHERE seq = ?", (target,)) is None:
            raise UnknownEvent(f"no event {target}")
    else:
        raise UsageError(f"a note is on an intent or an event, not {on!r}")
    return queue.note(ANNOTATED, on=on, target=target, note=note, author=author)


def project(job: Job) -> Effect:
    """The intent's domain state: one record per intent, keyed by it, so a repeat is
    absorbed by the commit boundary."""
    payload = job.payload
    return Effect(
        PROJECTION,
        f"intent-{payload['intent']}",
        {"type": payload["type"], "payload": payload["payload"]},
    )


def sync(job: Job) -> Effect:
    """Send the intent to the outside target, keyed by the intent so that the target can
    absorb a repeat (external idempotency)."""
    payload = job.payload
    return Effect(
        SYNC_TARGET,
        f"intent-{payload['intent']}",
        {"type": payload["type"]},
        external=True,
    )


HANDLERS = {PROJECT: project, SYNC: sync}
