"""Which store a `--db` names: a PostgreSQL URL, or else a SQLite file (or `:memory:`).

One place decides, so every command takes the same `--db` and the rest of the runtime
sees only the store interface (runtime.store.Store, runtime.pg_store.PgStore).
"""

import argparse
from pathlib import Path

from runtime.clock import Clock, DatabaseClock, SystemClock
from runtime.pg_store import PgStore, is_postgres
from runtime.store import Store

AnyStore = Store | PgStore
DB_HELP = "a SQLite file, or a postgresql:// URL"


def database(text: str) -> str | Path:
    """A `--db` argument: a PostgreSQL URL as it is, anything else as a file's path."""
    return text if is_postgres(text) else Path(text)


def sqlite_file(text: str) -> Path:
    """A `--db` argument of a command that runs on a SQLite file only (the intent log, the
    tickets service: their SQL is SQLite's): a PostgreSQL URL is refused, by name."""
    if is_postgres(text):
        raise argparse.ArgumentTypeError(
            "this command runs on a SQLite file only; on PostgreSQL the lab runs the queue"
            " itself (fmlab worker, submit, check, timeline)"
        )
    return Path(text)


def open_store(
    target: str | Path, *, create: bool = True, read_only: bool = False, wait_for_lock: bool = True
) -> AnyStore:
    """`wait_for_lock=False`: SQLite's naive setup (FM_023). PostgreSQL has no such setup:
    a writer there always waits for the row it needs, so the lever does not reach it."""
    if is_postgres(target):
        return PgStore.open(str(target), create=create, read_only=read_only)
    return Store.open(target, create=create, read_only=read_only, wait_for_lock=wait_for_lock)


def time_authority(store: AnyStore) -> Clock:
    """The clock a real process stamps events and sets leases by: the database server's
    when several machines share it (their own clocks drift apart; the server's is one),
    this machine's for a SQLite file, which only this machine's processes can open."""
    if isinstance(store, PgStore):
        return DatabaseClock(store)
    return SystemClock()
