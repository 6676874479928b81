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

from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Command:
    """One command a client sends: `create` (subject, message), `set_status` (status) or
    `set_note` (note), on `ticket` (None for `create`)."""

    name: str
    ticket: int | None = None
    fields: dict[str, str] = field(default_factory=dict)


KEY_MAX = 200
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode's White_Space property, exactly: a text of nothing else says nothing. Spelled
out because engines disagree on `\\s` (Python's counts U+001C to U+001F; the one that
checks the API's requests does not), and the model and the API must refuse the same."""
SAYS_SOMETHING = "[^" + "".join(f"\\u{ord(c):04x}" for c in sorted(WHITE_SPACE)) + "]"
"""The same rule as a pattern, for the API's schema: a character that is not white space."""


class KeyReused(UsageError):
    """Raised for an idempotency key sent again with a different subject or message."""


def create(queue: Queue, subject: str, message: str, *, key: str | None = None) -> Ticket:
    """Open a ticket at version 1. With `key` (a client's idempotency key), a create sent
    again with the same key, as a client that never heard back retries it, answers with
    the ticket the first one opened instead of opening a second; the same key with a
    different subject or message is refused (`KeyReused`): that is a client bug, not a
    retry."""
    return opened(queue, subject, message, key=key)[0]


def opened(
    queue: Queue, subject: str, message: str, *, key: str | None = None
) -> tuple[Ticket, bool]:
    """`create`, and whether this call opened the ticket (False: a retry with its key was
    answered with the ticket the first call opened)."""
    fields = {"subject": subject, "message": message}
    if key is not None:
        fields["key"] = _text("idempotency key", key, KEY_MAX)
    *_, (step, ticket) = commanding(queue, Command("create", None, fields))
    return ticket, step != "replayed"


def set_status(queue: Queue, ticket_id: int, status: str) -> Ticket:
    """Move a ticket to `status`. A closed ticket stays closed."""
    return run(queue, Command("set_status", ticket_id, {"status": status}))


def set_note(queue: Queue, ticket_id: int, note: str) -> Ticket:
    """Set the agent's note on a ticket, replacing the one it had. Not on a closed ticket."""
    return run(queue, Command("set_note", ticket_id, {"note": note}))


def run(queue: Queue, command: Command) -> Ticket:
    """Carry `command` out; returns the ticket as it left it."""
    *_, (_, ticket) = commanding(queue, command)
    return ticket


def commanding(queue: Queue, command: Command) -> Iterator[tuple[str, Ticket]]:
    """`run`, one transaction at a time: yields (step, ticket) after each, so a test or the
    simulator can stop the client between them (a crash).

    With lever `ticket_outbox` (GUARDED) there is one step, `committed`: the ticket, its
    history, its event and its projection job commit together. Without it the projection
    is enqueued in a transaction of its own once the ticket is saved (`ticket_saved`, then
    `projection_enqueued`), as a service that writes its row and then publishes an event
    does; a crash between leaves a change no projection will ever carry (FM_016). A
    command that changes nothing has one step whatever the lever.
    """
    fields = _validated(command)
    now = queue.clock.now()
    outbox = queue.policies.ticket_outbox
    with queue.store.transaction() as tx:
        ticket, moved = _write(tx, command, fields, now)
        if moved is not None and outbox:
            _enqueue(queue, tx, ticket, moved)
    if moved is None and command.name == "create":  # a retry answered by its key
        yield "replayed", ticket
        return
    if moved is None or outbox:
        yield "committed", ticket
        return
    yield "ticket_saved", ticket
    with queue.store.transaction() as tx:
        _enqueue(queue, tx, ticket, moved)
    yield "projection_enqueued", ticket


def _validated(command: Command) -> dict[str, str]:
    """The command's fields, checked before anything is written."""
    given = command.fields
    if command.name == "create":
        return {
            "subject": _text("subject", given.get("subject"), SUBJECT_MAX),
            "message": _text("message", given.get("message"), MESSAGE_MAX),
            **({"key": given["key"]} if given.get("key") is not None else {}),
        }
    if command.name == "set_status":
        status = given.get("status")
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        return {"status": status}
    if command.name == "set_note":
        return {"note": _text("note", given.get("note"), NOTE_MAX)}
    raise UsageError(f"unknown command {command.name!r}")


def _write(
    tx: Tx, command: Command, fields: dict[str, str], now: float
) -> tuple[Ticket, list[str | None] | None]:
    """Write the command's change (if it makes one) with its history row and its event;
    returns the ticket as it now is, and the status move the change made ([before, after],
    [None, None] for a note; None when nothing changed)."""
    if command.name == "create":
        key = fields.get("key")
        if key is not None:
            first = tx.one("SELECT * FROM tickets WHERE idempotency_key = ?", (key,))
            if first is not None:
                if (first["subject"], first["message"]) != (fields["subject"], fields["message"]):
                    raise KeyReused(
                        f"idempotency key {key!r} opened ticket {first['id']} with another"
                        " subject or message"
                    )
                return _ticket(first), None
        ticket_id = tx.insert(
            "INSERT INTO tickets (subject, message, status, version, created_at, updated_at,"
            " idempotency_key) VALUES (?, ?, 'open', 1, ?, ?, ?)",
            (fields["subject"], fields["message"], now, now, key),
        )
        moved = [None, "open"]
        return _changed(tx, ticket_id, "create", now, status=moved), moved
    assert command.ticket is not None
    if command.name == "set_status":
        ticket = _open_ticket(tx, command.ticket, f"move it to {fields['status']}")
        if ticket.status == fields["status"]:
            return ticket, None
        tx.execute(
            "UPDATE tickets SET status = ?, version = version + 1, updated_at = ? WHERE id = ?",
            (fields["status"], now, ticket.id),
        )
        moved = [ticket.status, fields["status"]]
        return _changed(tx, ticket.id, "set_status", now, status=moved), moved
    ticket = _open_ticket(tx, command.ticket, "note it")
    if ticket.note == fields["note"]:
        return ticket, None
    tx.execute(
        "UPDATE tickets SET note = ?, version = version + 1, updated_at = ? WHERE id = ?",
        (fields["note"], now, ticket.id),
    )
    return _changed(tx, ticket.id, "set_note", now), [None, None]


def get(store: Store | Tx, ticket_id: int) -> Ticket:
    row = store.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    if row is None:
        raise UnknownTicket(f"no ticket {ticket_id}")
    return _ticket(row)


def all_tickets(store: Store | Tx) -> list[Ticket]:
    return [_ticket(row) for row in store.all("SELECT * FROM tickets ORDER BY id")]


def _changed(tx: Tx, ticket_id: int, command: str, now: float, **detail: Any) -> Ticket:
    """Log the change that made the ticket's new version: its history row and its event."""
    ticket = get(tx, ticket_id)
    tx.execute(
        "INSERT INTO ticket_changes (ticket_id, version, command, at) VALUES (?, ?, ?, ?)",
        (ticket_id, ticket.version, command, now),
    )
    tx.event(
        now, "ticket.changed", ticket=ticket_id, version=ticket.version, command=command, **detail
    )
    return ticket


def _enqueue(queue: Queue, tx: Tx, ticket: Ticket, moved: list[str | None]) -> None:
    """The projection job that carries the ticket's new state to the read model, and the
    status move the change made (`moved`: only a projector that counts by events reads it,
    FM_020)."""
    queue.enqueue(
        tx,
        PROJECT,
        {**ticket.state(), "moved": moved},
        idempotency_key=f"{PROJECT}-{ticket.id}-v{ticket.version}",
    )


def _open_ticket(tx: Tx, ticket_id: int, action: str) -> Ticket:
    ticket = get(tx, ticket_id)
    if ticket.status == "closed":
        raise TicketClosed(f"ticket {ticket_id} is closed; cannot {action}")
    return ticket


def _text(name: str, value: Any, longest: int) -> str:
    if not isinstance(value, str) or not value or set(value) <= WHITE_SPACE:
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
