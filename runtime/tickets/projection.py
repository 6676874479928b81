"""The projector: a ticket's state as of one version, made into its read-model row.

A projection job carries the ticket as it was at one version (runtime.tickets.model), so
projecting is a pure function of the job; the write to the read model is the effect of
the job, written at its commit by the runtime (effect sink `ticket_views`). Deliveries
can repeat and arrive out of order (at-least-once delivery, retries, several workers), so
the write goes through only when its version is newer than the row's, decided by the
database in the same statement that writes: there is no moment between a check and a
write for another projector to slip into. A write that is not newer changes nothing and
says so (`ticket.projection_skipped`).

The status counts (`ticket_status_counts`, how many tickets are open, in progress,
closed) move in the same transaction, and only when the row did: a repeat cannot count
a ticket twice.
"""

from typing import Any

from runtime.effects import Effect
from runtime.policies import Policies
from runtime.store import Store, Tx

SINK = "ticket_views"
"""The effect sink of a projection: the read model."""
VIEW_SCHEMA_VERSION = 1
"""The shape of a read-model row; a rebuild writes every row at this version."""
PREVIEW_CHARS = 50
VIEW_COLUMNS = (
    "id", "subject", "status", "preview", "has_note", "version", "schema_version", "updated_at",
)  # fmt: skip
_UPSERT = f"""
INSERT INTO ticket_views ({", ".join(VIEW_COLUMNS)}) VALUES ({", ".join("?" * len(VIEW_COLUMNS))})
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in VIEW_COLUMNS[1:])}
WHERE excluded.version > ticket_views.version
"""
_OVERWRITE = _UPSERT.replace("WHERE excluded.version > ticket_views.version", "")
"""The same write with no version condition: what a projector without the guard does."""


def preview(message: str) -> str:
    """The first 50 characters of a message, and an ellipsis when there was more."""
    return message if len(message) <= PREVIEW_CHARS else message[:PREVIEW_CHARS] + "…"


def view_row(state: dict[str, Any]) -> tuple[Any, ...]:
    """The read-model row of a ticket's state (as `Ticket.state()` gives it), in
    VIEW_COLUMNS order."""
    return (
        state["ticket"],
        state["subject"],
        state["status"],
        preview(state["message"]),
        int(bool(state["note"])),
        state["version"],
        VIEW_SCHEMA_VERSION,
        state["updated_at"],
    )


def read(store: Store, effect: Effect) -> Effect:
    """Lever `conditional_write` off: the projector reads the row's version before it
    writes (at `effect_applied`), and the write (at the commit) trusts that read. The
    version read travels in the effect, as a credit's balance does (runtime.accounts)."""
    row = store.one("SELECT version FROM ticket_views WHERE id = ?", (effect.detail["ticket"],))
    return Effect(effect.sink, effect.key, {**effect.detail, "read_version": row and row[0]})


def write(
    tx: Tx,
    at: float,
    effect: Effect,
    policies: Policies,
    deferred: list[tuple[str, int]] | None = None,
    **who: Any,
) -> bool:
    """Write the projection if its version is newer than the row's; returns whether it did.
    Inside the commit's transaction; `who` names the execution, for its event.

    GUARDED, "newer" is decided by the database in the write itself. Without lever
    `conditional_write` it was decided by a read made earlier (`read`), and the write goes
    through on its strength whatever the row holds now (FM_018); without `version_guard`
    nobody asks, and every delivery overwrites (FM_017).

    The counts move by the row's own change, in this transaction. Without lever
    `count_on_write` they move by the event's transition (`moved`), written or not, so a
    delivery the row skipped still counts (FM_020). Without `atomic_projection` the moves
    are put in `deferred`, for the ack's transaction to write (FM_021).
    """
    row = view_row(effect.detail)
    ticket, version = row[0], row[5]
    before = tx.one("SELECT status, version FROM ticket_views WHERE id = ?", (ticket,))
    if not policies.version_guard:
        written = tx.execute(_OVERWRITE, row).rowcount == 1
    elif not policies.conditional_write:
        read_version = effect.detail["read_version"]
        newer = read_version is None or version > read_version
        written = newer and tx.execute(_OVERWRITE, row).rowcount == 1
    else:
        written = tx.execute(_UPSERT, row).rowcount == 1
    if policies.count_on_write:
        moves = [] if not written else [(row[2], +1)]
        if written and before is not None:
            moves.insert(0, (before["status"], -1))
    else:  # by the event: what the change did, whatever the row did
        old, new = effect.detail.get("moved") or (None, None)
        moves = [(status, delta) for status, delta in ((old, -1), (new, +1)) if status]
    for status, delta in moves:
        if deferred is None:
            count(tx, status, delta)
        else:
            deferred.append((status, delta))
    if not written:
        tx.event(
            at, "ticket.projection_skipped", **who, ticket=ticket, version=version,
            view_version=None if before is None else before["version"],
        )  # fmt: skip
        return False
    tx.event(
        at, "ticket.projected", **who, ticket=ticket, version=version,
        replaced=0 if before is None else before["version"],
    )  # fmt: skip
    return True


def count(tx: Tx, status: str, delta: int) -> None:
    """Move the count of `status` by `delta`."""
    tx.execute(
        "INSERT INTO ticket_status_counts (status, tickets) VALUES (?, ?)"
        " ON CONFLICT (status) DO UPDATE SET tickets = tickets + excluded.tickets",
        (status, delta),
    )
