"""Change capture: the database itself says which rows each write touched.

A write that changes a job without logging it must be caught the step it happens, so the
event log cannot be what tells a checker where to look. Triggers copy every row written to
the watched tables (and every event appended) into `fmlab_changes`, in the writer's own
transaction, so a rolled-back write leaves no change behind. The change table's columns
have no type, so every value keeps its exact storage class (a REAL stays the same double).

Only in-memory simulation stores are watched: the simulator makes the triggers once per
process and copies the database image with them in it; `unwatch` removes them before a
simulated run is saved to a file, which is then a plain lab database.
"""

from typing import Any

from runtime.store import Store

COLUMNS: dict[str, tuple[str, ...]] = {
    "jobs": ("id", "state", "attempts", "max_attempts", "run_at", "fencing_token", "last_error"),
    "executions": ("id", "job_id", "status", "fencing_token", "lease_expires_at", "error"),
    "effects": ("id", "sink", "key", "job_id", "execution_id"),
    "events": ("seq", "at", "type", "job_id", "execution_id", "worker", "detail"),
}
"""The columns a checker reads, per table, in the order a change carries them."""
ROWS = ("jobs", "executions", "effects")
"""The tables whose current rows the checkers keep; the events are folded in instead."""


_WIDTH = max(len(columns) for columns in COLUMNS.values())
VERBS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
WATCH_PREFIX = "fmlab_watch_"
_SLOTS = ", ".join(f"c{i}" for i in range(1, _WIDTH + 1))
CHANGES = f"SELECT tbl, {_SLOTS}, n FROM fmlab_changes WHERE n > ? ORDER BY n"
"""Every change captured after change `?`, in the order it was written. The table only
grows during a run (a read is cheaper than a delete); wiping the store empties it."""


def install_watch(store: Store) -> None:
    """Install the capture triggers (once: a store that has them keeps them)."""
    if store.path != ":memory:":
        raise ValueError("only an in-memory simulation store is watched")
    if store.one("SELECT 1 FROM sqlite_master WHERE name = 'fmlab_changes'"):
        return
    statements = [f"CREATE TABLE fmlab_changes (n INTEGER PRIMARY KEY, tbl, {_SLOTS})"]
    for table, columns in COLUMNS.items():
        names = ", ".join(f"c{i}" for i in range(1, len(columns) + 1))
        verbs = (("INSERT", "NEW"),) if table == "events" else VERBS
        for verb, row in verbs:
            values = (
                ", ".join(f"{row}.{c}" for c in columns)
                if verb != "DELETE"
                else ", ".join([f"{row}.id", *(["NULL"] * (len(columns) - 1))])
            )
            statements.append(
                f"CREATE TRIGGER {WATCH_PREFIX}{table}_{verb.lower()} AFTER {verb} ON {table}"
                f" BEGIN INSERT INTO fmlab_changes (tbl, {names}) VALUES ('{table}', {values}); END"
            )
    for statement in statements:
        store.all(statement)


def unwatch(store: Store) -> None:
    """Remove what `install_watch` added, leaving a plain lab database."""
    for (name,) in store.all(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
        (WATCH_PREFIX + "%",),
    ):
        store.all(f"DROP TRIGGER {name}")
    store.all("DROP TABLE IF EXISTS fmlab_changes")


def changes_after(store: Store, after: int) -> list[tuple[Any, ...]]:
    """Every change captured after change number `after`: (table, columns..., number)."""
    return store.tuples(CHANGES, (after,))
