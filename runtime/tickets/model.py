"""The write model: tickets, the commands that change them, and each change's projection.

A ticket is open, in_progress or closed; a closed ticket is never reopened or noted (the
database refuses it too). Every change raises the ticket's version by one and is written,
in the same transaction, with its row in `ticket_changes` (the ticket's history: which
command made which version, and when), its event, and the projection job that will carry
the new state to the read model. So no change is saved without the job that projects it,
and no job is enqueued for a change that did not commit.

A command that changes nothing (a status the ticket already has, the note it already
carries) writes nothing and answers with the current version: a client that retries a
command it never heard back from gets the same answer twice.
"""

from dataclasses import dataclass
from typing import Any

from runtime.errors import UsageError
from runtime.queue import Queue
from runtime.store import Store, Tx

PROJECT = "ticket.project"
"""The kind of the job that carries a ticket's new state to the read model."""
STATUSES = ("open", "in_progress", "closed")
SUBJECT_MAX = 200
MESSAGE_MAX = 10_000
NOTE_MAX = 2_000


class UnknownTicket(UsageError):
    """Raised for a ticket id that does not exist."""


class TicketClosed(UsageError):
    """Raised for a command on a closed ticket: closed is final."""


@dataclass(frozen=True)
class Ticket:
    id: int
    subject: str
    message: str
    status: str
    note: str | None
    version: int
    created_at: float
    updated_at: float

    def state(self) -> dict[str, Any]:
        """What the projection job carries: the ticket as of its version."""
        return {
            "ticket": self.id,
            "version": self.version,
            "subject": self.subject,
            "message": self.message,
            "status": self.status,
            "note": self.note,
            "updated_at": self.updated_at,
        }


def create(queue: Queue, subject: str, message: str) -> Ticket:
    """Open a ticket at version 1."""
    subject = _text("subject", subject, SUBJECT_MAX)
    message = _text("message", message, MESSAGE_MAX)
    now = queue.clock.now()
    with queue.store.transaction() as tx:
        cursor = tx.execute(
            "INSERT INTO tickets (subject, message, status, version, created_at, updated_at)"
            " VALUES (?, ?, 'open', 1, ?, ?)",
            (subject, message, now, now),
        )
        ticket_id = cursor.lastrowid
        assert ticket_id is not None
        return _changed(queue, tx, ticket_id, "create", now, status=[None, "open"])


def set_status(queue: Queue, ticket_id: int, status: str) -> Ticket:
    """Move a ticket to `status`. A closed ticket stays closed."""
    if status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    now = queue.clock.now()
    with queue.store.transaction() as tx:
        ticket = _open_ticket(tx, ticket_id, f"move it to {status}")
        if ticket.status == status:
            return ticket
        tx.execute(
            "UPDATE tickets SET status = ?, version = version + 1, updated_at = ? WHERE id = ?",
            (status, now, ticket_id),
        )
        return _changed(queue, tx, ticket_id, "set_status", now, status=[ticket.status, status])


def set_note(queue: Queue, ticket_id: int, note: str) -> Ticket:
    """Set the agent's note on a ticket, replacing the one it had. Not on a closed ticket."""
    note = _text("note", note, NOTE_MAX)
    now = queue.clock.now()
    with queue.store.transaction() as tx:
        ticket = _open_ticket(tx, ticket_id, "note it")
        if ticket.note == note:
            return ticket
        tx.execute(
            "UPDATE tickets SET note = ?, version = version + 1, updated_at = ? WHERE id = ?",
            (note, now, ticket_id),
        )
        return _changed(queue, tx, ticket_id, "set_note", now)


def get(store: Store | Tx, ticket_id: int) -> Ticket:
    row = store.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    if row is None:
        raise UnknownTicket(f"no ticket {ticket_id}")
    return _ticket(row)


def all_tickets(store: Store | Tx) -> list[Ticket]:
    return [_ticket(row) for row in store.all("SELECT * FROM tickets ORDER BY id")]


def _changed(
    queue: Queue, tx: Tx, ticket_id: int, command: str, now: float, **detail: Any
) -> Ticket:
    """Log the change that made the ticket's new version and enqueue its projection."""
    ticket = get(tx, ticket_id)
    tx.execute(
        "INSERT INTO ticket_changes (ticket_id, version, command, at) VALUES (?, ?, ?, ?)",
        (ticket_id, ticket.version, command, now),
    )
    tx.event(
        now, "ticket.changed", ticket=ticket_id, version=ticket.version, command=command, **detail
    )
    queue.enqueue(
        tx, PROJECT, ticket.state(), idempotency_key=f"{PROJECT}-{ticket_id}-v{ticket.version}"
    )
    return ticket


def _open_ticket(tx: Tx, ticket_id: int, action: str) -> Ticket:
    ticket = get(tx, ticket_id)
    if ticket.status == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; cannot {action}")
    return ticket


def _text(name: str, value: Any, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{name} must be a non-empty string")
    if len(value) > longest:
        raise UsageError(f"{name} is {len(value)} characters; at most {longest}")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and UTF-8 cannot
        raise UsageError(f"{name} is not valid Unicode text") from None
    return value


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row["id"],
        subject=row["subject"],
        message=row["message"],
        status=row["status"],
        note=row["note"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
