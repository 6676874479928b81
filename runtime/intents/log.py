"""The intent log: record an intent and its follow-up jobs in one transaction; annotate.

Recording is the only write an intent ever gets. Its follow-up jobs are enqueued in the
same transaction (a transactional outbox), so an acknowledged intent always has its jobs
and a crash before the commit leaves neither. The jobs carry the intent's type and payload
so that their handlers need nothing but the job.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime.effects import Effect
from runtime.errors import UsageError
from runtime.queue import Job, Queue, validated_payload
from runtime.store import Store, Tx

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
    *_, (_, intent_id) = recording(queue, type, payload)
    return intent_id


def recording(queue: Queue, type: str, payload: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """`record`, one transaction at a time: yields (step, intent id) after each, so a test
    or the simulator can stop the client between them (a crash).

    With lever `intent_first` (GUARDED) there is one step, `recorded`: the intent, its
    event and its jobs commit together. Without it the work comes first (FM_013): the jobs
    are enqueued for the id the intent is about to get (`work_enqueued`), and the intent
    is written afterwards (`recorded`); a crash between leaves work for an intent the log
    will never hold.
    """
    if not isinstance(type, str) or not type.strip():
        raise UsageError(f"intent type must be a non-empty string, got {type!r}")
    payload_json = validated_payload(type, payload)
    now = queue.clock.now()
    if queue.policies.intent_first:
        with queue.store.transaction() as tx:
            intent_id = _write_intent(tx, now, type, payload_json, None)
            _enqueue_follow_ups(queue, tx, intent_id, type, payload)
        yield "recorded", intent_id
        return
    with queue.store.transaction() as tx:
        intent_id = tx.one("SELECT coalesce(max(id), 0) + 1 FROM intents")[0]
        _enqueue_follow_ups(queue, tx, intent_id, type, payload)
    yield "work_enqueued", intent_id
    with queue.store.transaction() as tx:
        _write_intent(tx, queue.clock.now(), type, payload_json, intent_id)
    yield "recorded", intent_id


def _write_intent(tx: Tx, now: float, type: str, payload_json: str, intent_id: int | None) -> int:
    written = tx.insert(
        "INSERT INTO intents (id, type, payload, recorded_at) VALUES (?, ?, ?, ?)",
        (intent_id, type, payload_json, now),
    )
    tx.event(now, "intent.recorded", intent=written, intent_type=type)
    return written


def _enqueue_follow_ups(
    queue: Queue, tx: Tx, intent_id: int, type: str, payload: dict[str, Any]
) -> None:
    follow_up = {"intent": intent_id, "type": type, "payload": payload}
    for kind in (PROJECT, SYNC):
        queue.enqueue(tx, kind, follow_up, idempotency_key=f"{kind}-{intent_id}")


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
