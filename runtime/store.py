"""The durable store: one SQLite database holding jobs, executions, effects and the log.

Every operation of the runtime is one `BEGIN IMMEDIATE` transaction (`Store.transaction`),
so a crash between two operations leaves the database at one of them, never between.
File databases run in WAL mode and `synchronous=FULL`: an operation that returned is on
disk. A writer waits for another process's lock, looking for it every millisecond. The
event log is append-only, and the database itself refuses UPDATE and DELETE on it
(triggers), so no bug in Python can rewrite history.

A file is checked before anything is written to it: missing, corrupt, foreign (another
application's database) or newer-schema files raise `DatabaseError` and stay untouched.
Schema versions are `PRAGMA user_version`; ownership is `PRAGMA application_id`
(runtime.schema).
"""

import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from runtime.errors import DatabaseError, StoreUnavailable, UsageError
from runtime.schema import APPLICATION_ID, SCHEMA_VERSION, migrate

BUSY_TIMEOUT_S = 5.0
SYNCHRONOUS = ("FULL", "NORMAL")
"""FULL: a commit that returned is on disk. NORMAL (in WAL mode): it is once the next
checkpoint syncs; a crash of the process loses nothing, a power cut the last commits."""

_PRISTINE: bytes | None = None
"""The image of a freshly migrated in-memory database, made on first use."""


EVENTS_AFTER = (
    "SELECT seq, at, type, job_id, execution_id, worker, detail FROM events"
    " WHERE seq > ? ORDER BY seq"
)
"""The log after seq `?`, in order, columns as `event` takes them (every backend)."""


class Event(NamedTuple):
    """One row of the event log. A named tuple: the monitor builds one per event it folds,
    tens of thousands a second, and a tuple is the cheapest immutable record to build."""

    seq: int
    at: float
    type: str
    job_id: int | None
    execution_id: int | None
    worker: str | None
    detail: dict[str, Any]


def event(
    seq: int,
    at: float,
    type: str,
    job_id: int | None,
    execution_id: int | None,
    worker: str | None,
    detail: str,
) -> Event:
    """An Event from the columns of its row, in table order."""
    return Event(seq, at, type, job_id, execution_id, worker, _DECODER.raw_decode(detail)[0])


_DECODER = json.JSONDecoder()
"""`raw_decode` skips `json.loads`'s whitespace scans: a detail is canonical JSON (`dumps`),
and the schema refuses one that is not valid JSON (`CHECK (json_valid(detail))`)."""


class Tx:
    """An open `BEGIN IMMEDIATE` transaction. Everything done through it commits together.

    The store interface every backend's transaction offers (runtime.pg_store has the
    other). SQL is written once, with `?` placeholders. The lock verbs exist for a backend
    whose writers run side by side (PostgreSQL at READ COMMITTED): here the write lock taken
    at BEGIN already serializes every writer, so they do nothing.
    """

    locks_rows = False
    """Whether concurrent writers can interleave, so reads must lock what they will write."""
    skip_locked = ""
    """The clause a leasing SELECT ends with: here nothing, for nobody else is leasing."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def insert(self, sql: str, params: tuple | dict = ()) -> int:
        """Run one INSERT into a table keyed by `id`; returns the new row's id."""
        row_id = self._conn.execute(sql, params).lastrowid
        assert row_id is not None
        return row_id

    def lock_jobs(self, *job_ids: int) -> None:
        """Hold these jobs' rows against other writers until the transaction ends."""

    def lock_key(self, key: str) -> None:
        """Hold `key` (an effect's, an account's, an idempotency key) against other
        writers until the transaction ends."""

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    def event(
        self,
        at: float,
        type: str,
        *,
        job: int | None = None,
        execution: int | None = None,
        worker: str | None = None,
        **detail: Any,
    ) -> int:
        """Append one event; returns its seq. Seqs are gap-free: nothing is ever deleted."""
        cursor = self._conn.execute(
            "INSERT INTO events (at, type, job_id, execution_id, worker, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, type, job, execution, worker, dumps(detail)),
        )
        seq = cursor.lastrowid
        assert seq is not None
        return seq


class Transaction:
    """`with store.transaction() as tx:` (a class, not a generator: it runs per operation).

    Writers of one file in one process (a server's request threads, its projector thread)
    take turns on a process-wide lock before `BEGIN IMMEDIATE`. Left to SQLite, a writer
    that finds the file locked sleeps in growing steps (up to 100 ms each) before it looks
    again, so under a few concurrent writers a commit of a millisecond could wait most of a
    second; the lock hands the turn over the moment the last writer commits. Writers in
    other processes still meet at SQLite's lock and its busy timeout.
    """

    __slots__ = ("_store", "_turn")

    def __init__(self, store: "Store") -> None:
        self._store = store
        self._turn = store._writers

    def __enter__(self) -> Tx:
        store = self._store
        if store.before_transaction is not None:
            try:
                store.before_transaction()
            except sqlite3.OperationalError as error:
                raise _unavailable(store, error) from error
        turn = self._turn
        if turn is not None:
            turn.acquire()
        try:
            if turn is None:
                store._conn.execute(store._begin)
            else:  # a file other processes may write too
                _patiently(store._conn.execute, store._begin)
        except sqlite3.OperationalError as error:
            if turn is not None:
                turn.release()
            raise _unavailable(store, error) from error
        return Tx(store._conn)

    def __exit__(self, kind: type | None, error: BaseException | None, trace: Any) -> None:
        conn = self._store._conn
        try:
            if kind is not None:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.OperationalError) and _busy(error):
                    # A statement inside the transaction was refused: a deferred one that
                    # found the lock taken when it came to write (FM_023).
                    raise _unavailable(self._store, error) from error
                return
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as failure:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _unavailable(self._store, failure) from failure
        finally:
            if self._turn is not None:
                self._turn.release()


LOOK_MS = 1
"""A file's connection waits this long for another process's lock before it looks again."""
_LOOKS = int(BUSY_TIMEOUT_S * 1000 / LOOK_MS)


def _patiently(
    execute: Callable[[str, tuple | dict], sqlite3.Cursor], sql: str, params: tuple | dict = ()
) -> sqlite3.Cursor:
    """Run a statement that may need a lock another process holds (a write transaction's
    `BEGIN IMMEDIATE`, a read), looking for it every LOOK_MS for up to BUSY_TIMEOUT_S.

    Left to itself, SQLite's busy handler looks again after growing sleeps (1, 2, 5, ...
    up to 100 ms), so a process that commits short transactions back to back holds the
    write lock nearly all the time, and one that waits, looking only every 100 ms, rarely
    finds it free: it starves (two `fmlab work` processes on one file, one of them idle in
    16 of 20 runs). Looking every millisecond, the waiter finds the next gap between the
    other's transactions. SQLite does the waiting (a file's connection has a busy timeout
    of LOOK_MS: `Store.open`), so the runtime still never sleeps or reads the wall."""
    for look in range(_LOOKS):
        try:
            return execute(sql, params)
        except sqlite3.OperationalError as error:
            if not _busy(error) or look == _LOOKS - 1:
                raise
    raise AssertionError("unreachable: the last look raises")


def _unavailable(store: "Store", error: sqlite3.OperationalError) -> StoreUnavailable:
    """The error as the runtime reports it; `busy` when another writer held the lock
    (SQLITE_BUSY and its extended codes, such as BUSY_SNAPSHOT)."""
    return StoreUnavailable(f"{store.path}: {error}", busy=_busy(error))


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


_WRITERS: "dict[str, threading.RLock]" = {}
"""Per database file (its resolved path), the lock its writers in this process take turns on."""
_WRITERS_GUARD = threading.Lock()


def _writers(path: str) -> "threading.RLock | None":
    """The turn lock of the file at `path`; None for an in-memory database, which has one
    connection and nobody to take turns with."""
    if path == ":memory:":
        return None
    key = str(Path(path).resolve())
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, threading.RLock())


class Store:
    """A connection to one lab database. Not thread-safe: one Store per thread or process."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        *,
        wait_for_lock: bool = True,
        patient: bool = False,
    ) -> None:
        self._conn = conn
        self.path = path
        self._patient = patient
        """A file other processes write: its connection waits LOOK_MS for a lock, and the
        store asks again (`_patiently`) for a transaction's BEGIN and for a read."""
        self._writers = _writers(path) if wait_for_lock else None
        self._begin = "BEGIN IMMEDIATE" if wait_for_lock else "BEGIN"
        self._schema_loaded = -1
        """The schema cookie of the image last loaded into an in-memory store (`wipe`)."""
        self.before_transaction: Callable[[], None] | None = None
        """Called as each transaction begins; the simulator's seam for a transient database
        error. Whatever it raises is raised where the real failure would be."""

    @classmethod
    def memory(cls, image: bytes | None = None) -> "Store":
        """A fresh in-memory lab database: a copy of one migrated once per process (or of
        `image`, one taken with `image()`).

        Migrating takes a few hundred microseconds; copying the migrated image takes tens.
        The simulator opens one store per seed, so this is most of a seed's set-up cost.
        """
        conn = _connect(":memory:")
        conn.deserialize(_pristine() if image is None else image)
        store = cls(conn, ":memory:")
        store._schema_loaded = conn.execute("PRAGMA schema_version").fetchone()[0]
        return store

    def rows_written(self) -> int:
        """Rows inserted, updated or deleted through this connection since it opened,
        counting those written by triggers and by transactions rolled back since; it
        never goes down while the connection lasts."""
        return self._conn.total_changes

    def image(self) -> bytes:
        """This database, whole, as bytes (for `memory(image)` and `wipe(image)`)."""
        return self._conn.serialize()

    def wipe(self, image: bytes | None = None) -> None:
        """Replace this in-memory database, in place, with a fresh copy of `image` (by
        default, the freshly migrated empty one): thousands of seeds on one connection."""
        if self.path != ":memory:":
            raise ValueError("only an in-memory store can be wiped")
        if self._conn.execute("PRAGMA schema_version").fetchone()[0] != self._schema_loaded:
            # The run changed the schema (a rebuild swapped a table in). The connection's
            # cached statements are keyed by their SQL text, and SQLite re-prepares one
            # only when the schema cookie differs; after the copy below the cookie starts
            # again from the image's, so a later run's schema can reach the same cookie with
            # its tables at other pages, and a stale statement would read the wrong pages
            # ("database disk image is malformed"). A fresh connection has no cache.
            self._conn.close()
            self._conn = _connect(":memory:")
        self._conn.deserialize(_pristine() if image is None else image)
        self._schema_loaded = self._conn.execute("PRAGMA schema_version").fetchone()[0]

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        wait_for_lock: bool = True,
        synchronous: str = "FULL",
    ) -> "Store":
        """Open (and migrate) a lab database, refusing any file that is not one of ours.

        `create=False` refuses a missing file; `read_only=True` never writes, not even a
        migration, so an older lab database is read as it stands. `wait_for_lock=False`
        is the naive setup of FM_023 (lever `wait_for_write_lock` off): deferred
        transactions and no busy timeout, so another writer is an error at once.
        `synchronous="NORMAL"` lets a commit return before the WAL reaches the disk: a
        power cut may lose the last commits, never corrupt the file (a benchmark's
        setting, to compare with queues that run that way; the lab's is FULL).
        """
        if synchronous not in SYNCHRONOUS:
            raise UsageError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        path = str(path)
        if path == ":memory:":
            conn = _connect(path)
            migrate(conn)
            return cls(conn, path)
        file = Path(path)
        if file.exists():
            _inspect(file)
        elif not create or read_only:
            raise DatabaseError(f"{path}: no such database file")
        if read_only:
            conn = _connect(_read_only_uri(file), uri=True)
        else:
            conn = _connect(path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            migrate(conn)
            conn.execute(f"PRAGMA busy_timeout = {LOOK_MS if wait_for_lock else 0}")
        return cls(conn, path, wait_for_lock=wait_for_lock, patient=wait_for_lock and not read_only)

    def transaction(self) -> "Transaction":
        """One atomic operation: `BEGIN IMMEDIATE`, commit on success, roll back on error.

        IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        instead of failing half-way with "database is locked" on upgrade.
        """
        return Transaction(self)

    def _read(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        if self._patient:
            return _patiently(self._conn.execute, sql, params)
        return self._conn.execute(sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self._read(sql, params).fetchone()

    def all(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._read(sql, params).fetchall()

    def tuples(self, sql: str, params: tuple | dict = ()) -> list[tuple[Any, ...]]:
        """Like `all`, as plain tuples: cheaper, for a reader that knows its columns."""
        cursor = self._conn.cursor()
        cursor.row_factory = None
        if self._patient:
            return _patiently(cursor.execute, sql, params).fetchall()
        return cursor.execute(sql, params).fetchall()

    def events(self, after_seq: int = 0) -> list[Event]:
        return [event(*row) for row in self._read(EVENTS_AFTER, (after_seq,))]

    def schema_version(self) -> int:
        return self._read("PRAGMA user_version").fetchone()[0]

    def schema_cookie(self) -> int:
        """A number that changes whenever the schema does (a table or trigger made or
        dropped), for a reader that caches what the schema holds."""
        return self._read("PRAGMA schema_version").fetchone()[0]

    def triggers(self) -> frozenset[str]:
        """The names of the triggers the database holds (INV_003 reads them)."""
        rows = self._read("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return frozenset(row[0] for row in rows)

    def integrity_check(self) -> str:
        """SQLite's own check of every page, index and constraint: "ok", or what is wrong."""
        return "\n".join(row[0] for row in self._conn.execute("PRAGMA integrity_check"))

    def backup_to(self, path: str | Path) -> None:
        """Copy this database, consistent at one instant, to a new file."""
        target = sqlite3.connect(str(path))
        try:
            self._conn.backup(target)
            target.execute("PRAGMA journal_mode = WAL")
        finally:
            target.close()

    def close(self) -> None:
        self._conn.close()


def _pristine() -> bytes:
    global _PRISTINE
    if _PRISTINE is None:
        _PRISTINE = Store.open(":memory:")._conn.serialize()
    return _PRISTINE


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, so equal values are equal bytes.

    NaN and Infinity are refused (ValueError): Python writes them, but they are not JSON.
    """
    if _ENCODE is None:
        return _CANONICAL.encode(value)
    return "".join(_ENCODE(value, 0))


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
"""One encoder for every event: `json.dumps` with options builds a new one per call."""
_ENCODE = (
    None
    if json.encoder.c_make_encoder is None
    else json.encoder.c_make_encoder(
        None,  # no check for circular values: an event's detail is a tree of plain values
        _CANONICAL.default,
        json.encoder.encode_basestring_ascii,
        None,
        _CANONICAL.key_separator,
        _CANONICAL.item_separator,
        _CANONICAL.sort_keys,
        _CANONICAL.skipkeys,
        _CANONICAL.allow_nan,
    )
)
"""`_CANONICAL`'s own C encoder, made once: `JSONEncoder.encode` makes a new one for every
value, which took most of an event's encoding time (an event a simulator step, at least)."""


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, isolation_level=None, timeout=BUSY_TIMEOUT_S, uri=uri)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_only_uri(file: Path) -> str:
    """A URI that reads `file` without creating anything beside it.

    A plain read-only open of a WAL database creates its -wal and -shm files. When there is
    no -wal file, no writer is attached and the file alone is the whole database, so it is
    opened `immutable`, which creates nothing. When there is one, those files already exist.
    """
    uri = f"file:{urllib.parse.quote(str(file.resolve()))}?mode=ro"
    if not Path(f"{file}-wal").exists():
        uri += "&immutable=1"
    return uri


def _inspect(file: Path) -> None:
    """Refuse, before writing anything, a file that is not a lab database we can open.

    The file is read only through SQLite, never opened with plain I/O: closing any other
    descriptor on a database file drops every POSIX lock this process holds on it ("How
    To Corrupt An SQLite Database File", section 2.2). A server opens a Store per request
    thread; when one of those opens read the header by hand, another process closing its
    connection found no other holder, checkpointed, and deleted the WAL under the
    server's connections, and the file was corrupt (tests/test_store.py).
    """
    if file.stat().st_size == 0:
        raise DatabaseError(f"{file}: empty; refusing to touch it")
    try:
        conn = sqlite3.connect(_read_only_uri(file), uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # Every page, not just the schema: a damaged table or index is refused here,
            # not found half-way through the first operation that happens to touch it.
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise DatabaseError(f"{file}: not a SQLite database; refusing to touch it") from None
        raise DatabaseError(f"{file}: corrupt database ({error})") from None
    if app_id != APPLICATION_ID:
        raise DatabaseError(f"{file}: not a failure-mode-lab database (application_id {app_id})")
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{file}: schema version {version} is newer than this lab's {SCHEMA_VERSION};"
            " upgrade failure-mode-lab"
        )
    if verdict != "ok":
        raise DatabaseError(f"{file}: corrupt database ({verdict.splitlines()[-1]})")
