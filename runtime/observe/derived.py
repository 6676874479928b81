"""Storing a derived view: the whole table replaced in one transaction, never appended to.

A derived table is a cache of a computation over the log. Replacing it whole is what
makes a rebuild idempotent: run it twice, or after a wipe, and the rows are the same.
"""

from collections.abc import Callable
from dataclasses import astuple, fields
from typing import Any

from runtime.store import Store

REBUILT = "derived.rebuilt"


def replace_all(
    store: Store,
    at: float,
    table: str,
    compute: Callable[[int], list[Any]],
    *,
    replace: bool = True,
    accumulate: str | None = None,
) -> list[Any]:
    """Make `table` hold exactly what `compute(upto_seq)` returns (dataclasses whose fields
    are its columns), computed from the log up to its latest event, inside the transaction
    that writes them; log the rebuild (`derived.rebuilt`) in it too, so a check can compute
    the same rows from the same events again (INV_011). Returns the rows.

    Without lever `replace_derived` the rebuild adds to the table instead (FM_014): each
    computed row is inserted, and one already there is updated with `accumulate` (an
    upsert that adds this run's counts to the last run's), or kept as it is."""
    with store.transaction() as tx:
        upto_seq = tx.one("SELECT coalesce(max(seq), 0) FROM events")[0]
        rows = compute(upto_seq)
        if replace:
            tx.execute(f"DELETE FROM {table}")
        conflict = (
            ""
            if replace
            else " ON CONFLICT DO NOTHING"
            if accumulate is None
            else f" ON CONFLICT DO UPDATE SET {accumulate}"
        )
        for row in rows:
            names = [field.name for field in fields(row)]
            tx.execute(
                f"INSERT INTO {table} ({', '.join(names)})"
                f" VALUES ({', '.join('?' * len(names))}){conflict}",
                astuple(row),
            )
        tx.event(at, REBUILT, table=table, upto_seq=upto_seq, rows=len(rows))
    return rows
