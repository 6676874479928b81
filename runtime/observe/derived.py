"""Storing a derived view: the whole table replaced in one transaction, never appended to.

A derived table is a cache of a computation over the log. Replacing it whole is what
makes a rebuild idempotent: run it twice, or after a wipe, and the rows are the same.
"""

from dataclasses import astuple, fields
from typing import Any

from runtime.store import Store


def replace_all(store: Store, table: str, rows: list[Any]) -> None:
    """Make `table` hold exactly `rows` (dataclasses whose fields are its columns)."""
    with store.transaction() as tx:
        tx.execute(f"DELETE FROM {table}")
        for row in rows:
            names = [field.name for field in fields(row)]
            tx.execute(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                astuple(row),
            )
