"""The read model: what readers of tickets see, and its rebuild by replay.

The read model is derived and disposable: whatever happens to it, the write model can
make it again. A rebuild must never show readers an empty or half-filled view, and it
must not stop the projector for as long as it runs. So it fills a shadow table from the
write model a batch at a time, each batch a short transaction of its own, while the
projector goes on writing to the live table; then, in one transaction, it takes into the
shadow every live row that a projection made newer in the meantime (never one newer than
the write model itself: that row is corrupt, and the rebuild is what mends it), recounts the
statuses, and swaps the shadow in. A reader sees the old table or the new one, whole.

Every rebuild has a shadow table of its own, named after the event that started it, so
two rebuilds can run at once: the second swap takes in what the first swapped in, by
version. A shadow left by a rebuild that died is dropped by the next rebuild once it is
an hour old.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime.clock import Clock
from runtime.policies import GUARDED, Policies
from runtime.store import Store, Tx
from runtime.tickets.projection import VIEW_COLUMNS, view_row

REBUILD_BATCH = 500
"""Tickets per transaction while a rebuild fills its shadow."""
SHADOW_PREFIX = "ticket_views_shadow_"
STALE_SHADOW_S = 3600.0
_COLUMNS = ", ".join(VIEW_COLUMNS)


@dataclass(frozen=True)
class TicketView:
    id: int
    subject: str
    status: str
    preview: str
    has_note: bool
    version: int
    schema_version: int
    updated_at: float


@dataclass(frozen=True)
class Rebuilt:
    tickets: int
    """Rows in the swapped-in table."""
    taken_from_live: int
    """Rows the swap took from the live table: those a projection made newer while the
    shadow was filled (and, in a catch-up rebuild, every row it trusted as current)."""
    batches: int


def get_view(store: Store, ticket_id: int) -> TicketView | None:
    row = store.one(f"SELECT {_COLUMNS} FROM ticket_views WHERE id = ?", (ticket_id,))
    return None if row is None else _view(row)


def list_views(
    store: Store, *, status: str | None = None, after: int = 0, limit: int = 100
) -> list[TicketView]:
    """Views in id order, after id `after` (keyset pagination), at most `limit`."""
    where, params = "id > ?", [after]
    if status is not None:
        where += " AND status = ?"
        params.append(status)
    rows = store.all(
        f"SELECT {_COLUMNS} FROM ticket_views WHERE {where} ORDER BY id LIMIT ?", (*params, limit)
    )
    return [_view(row) for row in rows]


def status_counts(store: Store) -> dict[str, int]:
    rows = store.all("SELECT status, tickets FROM ticket_status_counts ORDER BY status")
    return {row[0]: row[1] for row in rows if row[1]}


def rebuild(
    store: Store,
    clock: Clock,
    *,
    batch: int = REBUILD_BATCH,
    policies: Policies = GUARDED,
    by: str | None = None,
) -> Rebuilt:
    """Rebuild the read model from the write model and swap it in (see the module); `by`
    names who rebuilt, in the log."""
    *_, (_, done) = rebuilding(store, clock, batch=batch, policies=policies, by=by)
    assert done is not None
    return done


def rebuilding(
    store: Store,
    clock: Clock,
    *,
    batch: int = REBUILD_BATCH,
    policies: Policies = GUARDED,
    by: str | None = None,
) -> Iterator[tuple[str, Rebuilt | None]]:
    """`rebuild`, one transaction at a time: yields (step, None) after each, and
    ("swapped", what it did) last, so the simulator can interleave readers, commands and
    projections between them.

    Without lever `shadow_swap` the rebuild works on the live table (FM_019): it empties
    it (`emptied`), fills it a batch at a time (`filled`) and counts the statuses again
    (`swapped`); a reader between two of those steps finds tickets missing.
    """
    if not policies.shadow_swap:
        yield from _rebuilding_in_place(store, clock, batch, by)
        return
    with store.transaction() as tx:
        seq = tx.event(clock.now(), "ticket.rebuild_started", worker=by)
        _drop_stale_shadows(tx, clock.now())
        live_sql = tx.one("SELECT sql FROM sqlite_master WHERE name = 'ticket_views'")[0]
        shadow = f"{SHADOW_PREFIX}{seq}"
        tx.execute(live_sql.replace("ticket_views", shadow, 1))
    yield "started", None
    batches = 0
    for _ in _batches(store, shadow, batch, every=policies.full_rebuild):
        batches += 1
        yield "filled", None
    with store.transaction() as tx:
        taken = tx.execute(
            f"INSERT INTO {shadow} ({_COLUMNS}) SELECT {_COLUMNS} FROM ticket_views AS live"
            " WHERE live.version <= (SELECT t.version FROM tickets t WHERE t.id = live.id)"
            " ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in VIEW_COLUMNS[1:])
            + f" WHERE excluded.version > {shadow}.version",
        ).rowcount
        tx.execute("DROP TABLE ticket_views")
        tx.execute(f"ALTER TABLE {shadow} RENAME TO ticket_views")
        done = _recounted(tx, clock, seq, taken, batches, by)
    yield "swapped", done


def _rebuilding_in_place(
    store: Store, clock: Clock, batch: int, by: str | None
) -> Iterator[tuple[str, Rebuilt | None]]:
    with store.transaction() as tx:
        seq = tx.event(clock.now(), "ticket.rebuild_started", worker=by)
        tx.execute("DELETE FROM ticket_views")
    yield "emptied", None
    batches = 0
    for _ in _batches(store, "ticket_views", batch):
        batches += 1
        yield "filled", None
    with store.transaction() as tx:
        done = _recounted(tx, clock, seq, 0, batches, by)
    yield "swapped", done


_BEHIND = (
    " AND NOT EXISTS (SELECT 1 FROM ticket_views v WHERE v.id = tickets.id"
    " AND v.version >= tickets.version)"
)
"""Lever `full_rebuild` off: only the tickets whose live row is missing or behind."""


def _batches(store: Store, table: str, batch: int, *, every: bool = True) -> Iterator[int]:
    """Project the write model into `table`, `batch` tickets a transaction; yields after
    each transaction the number of tickets it wrote. Without `every` (lever
    `full_rebuild` off: a catch-up) a ticket whose live row is at its current version is
    left out, and the swap takes that row from the live table as it is (FM_022)."""
    after, only = 0, "" if every else _BEHIND
    while True:
        with store.transaction() as tx:
            rows = tx.all(
                f"SELECT * FROM tickets WHERE id > ?{only} ORDER BY id LIMIT ?", (after, batch)
            )
            for row in rows:
                tx.execute(
                    f"INSERT OR REPLACE INTO {table} ({_COLUMNS}) VALUES"
                    f" ({', '.join('?' * len(VIEW_COLUMNS))})",
                    view_row({**dict(row), "ticket": row["id"]}),
                )
        yield len(rows)
        if len(rows) < batch:
            return
        after = rows[-1]["id"]


def _recounted(
    tx: Tx, clock: Clock, started: int, taken: int, batches: int, by: str | None
) -> Rebuilt:
    tx.execute("DELETE FROM ticket_status_counts")
    tx.execute(
        "INSERT INTO ticket_status_counts (status, tickets)"
        " SELECT status, count(*) FROM ticket_views GROUP BY status"
    )
    tickets = tx.one("SELECT count(*) FROM ticket_views")[0]
    tx.event(
        clock.now(), "ticket.views_rebuilt", worker=by, started=started, tickets=tickets,
        taken_from_live=taken, batches=batches,
    )  # fmt: skip
    return Rebuilt(tickets, taken, batches)


def reconcile(store: Store, clock: Clock, *, by: str | None = None) -> list[int]:
    """Compare every read-model row with the projection of its ticket's current state;
    returns the tickets whose row is damaged, and logs them (`ticket.views_suspect`) when
    there are any: the read model is unfit for those tickets until a rebuild that starts
    after this has swapped in.

    Lag is not damage: a row behind its ticket's version is a projection still to come.
    Damage is a row at (or past) the ticket's version that differs from what projecting
    the ticket gives, or a row for a ticket that does not exist.
    """
    damaged = []
    given = {row["id"]: row for row in store.all("SELECT * FROM tickets")}
    for row in store.all(f"SELECT {_COLUMNS} FROM ticket_views ORDER BY id"):
        ticket = given.get(row[0])
        if ticket is None or _damaged(tuple(row), ticket):
            damaged.append(row[0])
    if damaged:
        with store.transaction() as tx:
            tx.event(clock.now(), "ticket.views_suspect", worker=by, tickets=damaged)
    return damaged


def counts_off(store: Store) -> dict[str, tuple[int, int]]:
    """The statuses whose stored count differs from a count of the rows: status ->
    (stored, counted). Empty when the counts agree with the rows they count."""
    stored = status_counts(store)
    counted = dict(store.tuples("SELECT status, count(*) FROM ticket_views GROUP BY status"))
    return {
        status: (stored.get(status, 0), counted.get(status, 0))
        for status in sorted(stored.keys() | counted.keys())
        if stored.get(status, 0) != counted.get(status, 0)
    }


def _damaged(row: tuple[Any, ...], ticket: Any) -> bool:
    """A row at (or past) its ticket's version that is not what projecting it gives."""
    return row[5] >= ticket["version"] and row != view_row({**dict(ticket), "ticket": ticket["id"]})


def _drop_stale_shadows(tx: Tx, now: float) -> None:
    """Drop the shadow tables of rebuilds that started over an hour ago: they died."""
    for (name,) in tx.all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
        (SHADOW_PREFIX + "%",),
    ):
        started = tx.one("SELECT at FROM events WHERE seq = ?", (int(name[len(SHADOW_PREFIX) :]),))
        if started is None or now - started[0] > STALE_SHADOW_S:
            tx.execute(f"DROP TABLE {name}")


def _view(row: Any) -> TicketView:
    return TicketView(
        id=row[0],
        subject=row[1],
        status=row[2],
        preview=row[3],
        has_note=bool(row[4]),
        version=row[5],
        schema_version=row[6],
        updated_at=row[7],
    )
