"""The durable store on PostgreSQL: the store interface of runtime.store, for a queue that
several machines share.

The runtime's SQL is written once, with `?` placeholders; here it runs on psycopg 3 with
the placeholders turned into psycopg's. What differs is concurrency. SQLite admits one
writer at a time, so every transaction there is serial. Here transactions run side by side
at READ COMMITTED, and the runtime says what it reads in order to write (runtime.store.Tx):
a leasing SELECT skips rows another worker holds (`FOR UPDATE SKIP LOCKED`), a fenced write
holds its job's row, an effect holds its key (a transaction-scoped advisory lock). The
event log keeps SQLite's promises through the head row in `fmlab_meta` (runtime.pg_schema).

The lab's tables live in the connection's current schema (`search_path`; `public` unless
the URL's `options` says otherwise), so one server holds many lab databases side by side.
A schema that holds tables but no `fmlab_meta`, another application's, is refused, as is
one of a newer schema version, before anything is written.
"""

import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable
from typing import Any, ClassVar

import psycopg
import psycopg.errors
from psycopg.adapt import Loader

from runtime.errors import DatabaseError, StoreUnavailable
from runtime.pg_schema import APPLICATION, META, MIGRATIONS, NUMBERED, TABLES
from runtime.schema import SCHEMA_VERSION
from runtime.store import EVENTS_AFTER, Event, dumps, event

SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 5
_TRANSIENT = (
    psycopg.OperationalError,  # the server went away, a deadlock broken, a lock timeout
    psycopg.errors.SerializationFailure,
    sqlite3.OperationalError,  # what the simulator's seam raises for a transient error
)


def is_postgres(target: object) -> bool:
    return isinstance(target, str) and target.startswith(SCHEMES)


def in_schema(url: str, schema: str) -> str:
    """`url` with its connections' search_path set to `schema`: the lab database there."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


class Row(tuple):
    """A row read by column name or by position, as `sqlite3.Row` is."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.cache
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _rows(cursor: Any) -> Callable[[Any], Row]:
    return _row_class(tuple(column.name for column in cursor.description or ()))


class _Number(Loader):
    """NUMERIC as int or float (SQLite's answer), not Decimal: PostgreSQL's `sum()` of
    integers is NUMERIC, and the runtime adds it to ints."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return float(text) if any(c in text for c in ".eEN") else int(text)


@functools.cache
def pg_sql(sql: str) -> str:
    """The runtime's SQL in psycopg's placeholders: `?` becomes `%s` and a literal `%`
    doubles. The runtime writes no `?` inside a string literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first(cursor: psycopg.Cursor) -> Any:
    """The first row, or None; None too for a statement that returns no rows (as sqlite3)."""
    return cursor.fetchone() if cursor.description is not None else None


def _every(cursor: psycopg.Cursor) -> list[Any]:
    """Every row; [] for a statement that returns none (DDL, UPDATE), as sqlite3 gives."""
    return cursor.fetchall() if cursor.description is not None else []


def _run(conn: "_Session", sql: str, params: tuple | dict) -> psycopg.Cursor:
    """Run one statement of the runtime's SQL (with no parameters, psycopg reads no
    placeholders, so the text goes as it is)."""
    if not params:
        return conn.execute(sql)
    return conn.execute(pg_sql(sql), params)


_NEXT_SEQ = "UPDATE fmlab_meta SET last_seq = last_seq + 1 RETURNING last_seq"
_APPEND = (
    f"WITH head AS ({_NEXT_SEQ})"
    " INSERT INTO events (seq, at, type, job_id, execution_id, worker, detail)"
    " SELECT last_seq, %s::float8, %s::text, %s::bigint, %s::bigint, %s::text, %s::text"
    " FROM head RETURNING seq"
)
"""One statement an event: the next seq from the head row and the row that takes it."""


class _Session:
    """A connection that saves round trips inside a transaction. `BEGIN` goes out with the
    transaction's first statement, in one round trip (a psycopg pipeline), and a
    transaction that runs no statement sends nothing; a lock goes out with the statement
    after it. An event appended once the transaction holds the log's head (after its
    first append: runtime.pg_schema) has a seq known in advance, so its append waits and
    goes out with the next statement or the COMMIT; the seq the server gives it is
    checked against the one handed out."""

    __slots__ = ("conn", "deferred", "head")

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.deferred: list[tuple[str, Any, int | None]] = []
        """Statements to send before the next one, each with the first column it must
        return (None: any)."""
        self.head: int | None = None
        """The log's last seq, while this transaction holds the head row."""

    def begin(self) -> None:
        self.deferred = [("BEGIN", None, None)]
        self.head = None

    def begun(self) -> bool:
        """Whether anything of the current transaction has gone to the server."""
        return self.deferred[:1] != [("BEGIN", None, None)]

    def end(self) -> None:
        """The transaction is over, or never began: nothing of it is left to send."""
        self.deferred = []
        self.head = None

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor:
        conn = self.conn
        if not self.deferred:
            return conn.execute(query, params)
        deferred, self.deferred = self.deferred, []
        with conn.pipeline():
            sent = [(conn.execute(q, p), expected) for q, p, expected in deferred]
            cursor = conn.execute(query, params)
        for earlier, expected in sent:
            if expected is not None and earlier.fetchone()[0] != expected:
                raise DatabaseError("the event log's head moved under a transaction holding it")
        return cursor

    def lock(self, query: str, params: tuple[Any, ...]) -> None:
        """Take a lock the transaction holds to its end (`SELECT ... FOR UPDATE`, an
        advisory lock): nothing is read from it, so it goes out with the next statement,
        which the server runs only once the lock is held."""
        self.deferred.append((query, params, None))

    def append(self, params: tuple[Any, ...]) -> int:
        """Append one event to the log (`_APPEND`); returns its seq."""
        if self.head is None:  # the first of the transaction: take the head, and learn it
            self.head = self.execute(_APPEND, params).fetchone()[0]
        else:  # the head is this transaction's until it ends: the next seq is known
            self.head += 1
            self.deferred.append((_APPEND, params, self.head))
        return self.head


_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\) VALUES \((.*)\)\s*$", re.DOTALL)
_NEXT_ID = {
    table: f"UPDATE fmlab_meta SET last_{table} = last_{table} + 1 RETURNING last_{table}"
    for table in NUMBERED
}
_RAISE_ID = {
    table: f"UPDATE fmlab_meta SET last_{table} = greatest(last_{table}, %s)" for table in NUMBERED
}


@functools.cache
def _numbered_insert(table: str, columns: tuple[str, ...], values: str) -> str:
    """The INSERT with its id from `fmlab_meta`, in one statement: the head row's update
    in a WITH, read by the VALUES (which keep their types from the target columns)."""
    return pg_sql(
        f"WITH n AS ({_NEXT_ID[table]}) INSERT INTO {table} (id, {', '.join(columns)})"
        f" VALUES ((SELECT last_{table} FROM n), {values}) RETURNING id"
    )


@functools.cache
def _insert_parts(sql: str) -> tuple[str, list[str], str]:
    """(table, columns, the VALUES list) of one of the runtime's INSERTs."""
    match = _INSERT.match(sql)
    if match is None or match.group(1) not in NUMBERED:
        raise ValueError(f"not an INSERT into a numbered table: {sql!r}")
    table, columns, values = match.groups()
    return table, [c.strip() for c in columns.split(",")], values


class PgTx:
    """An open transaction (runtime.store.Tx's interface, PostgreSQL's locking)."""

    locks_rows = True
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: _Session) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple | dict = ()) -> psycopg.Cursor:
        return _run(self._conn, sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> Any:
        return _first(self.execute(sql, params))

    def all(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        return _every(self.execute(sql, params))

    def insert(self, sql: str, params: tuple | dict = ()) -> int:
        """Run `INSERT INTO t (columns) VALUES (...)` with the next id of `t` from
        `fmlab_meta` (runtime.pg_schema), or with the id the statement gives."""
        table, columns, values = _insert_parts(sql)
        given = list(params)
        if "id" in columns and given[columns.index("id")] is not None:
            row_id = given[columns.index("id")]
            self._conn.execute(_RAISE_ID[table], (row_id,))
        elif "id" in columns:
            row_id = self._conn.execute(_NEXT_ID[table]).fetchone()[0]
            given[columns.index("id")] = row_id
        else:  # one round trip: the next id, taken in the statement that uses it
            numbered = _numbered_insert(table, tuple(columns), values)
            return self._conn.execute(numbered, given).fetchone()[0]
        self._conn.execute(pg_sql(sql), given)
        return row_id

    def lock_jobs(self, *job_ids: int) -> None:
        self._conn.lock(
            "SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (list(job_ids),)
        )

    def lock_key(self, key: str) -> None:
        self._conn.lock("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

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
        """Append one event; returns its seq, taken from the log's head (which this
        transaction then holds until it ends: runtime.pg_schema)."""
        return self._conn.append((at, type, job, execution, worker, dumps(detail)))


class PgTransaction:
    """`with store.transaction() as tx:`; a transient failure (the server gone, a deadlock
    the server broke) is `StoreUnavailable`, as a busy SQLite file is."""

    __slots__ = ("_store",)

    def __init__(self, store: "PgStore") -> None:
        self._store = store

    def __enter__(self) -> PgTx:
        store = self._store
        try:
            if store.before_transaction is not None:
                store.before_transaction()
        except _TRANSIENT as error:
            raise StoreUnavailable(f"{store.path}: {error}") from error
        store._session.begin()
        return PgTx(store._session)

    def __exit__(self, kind: type | None, error: BaseException | None, trace: Any) -> None:
        session, conn = self._store._session, self._store._conn
        if not session.begun():  # no statement ran: nothing was begun
            session.end()
            return
        if kind is not None:
            session.end()  # what waited to be sent never will be
            _rollback(conn)
            if isinstance(error, _TRANSIENT):
                raise StoreUnavailable(f"{self._store.path}: {error}") from error
            return
        try:
            session.execute("COMMIT")  # with the appends still waiting
        except BaseException as failure:
            # A waiting append refused leaves the transaction open and aborted: end it.
            session.end()
            _rollback(conn)
            if isinstance(failure, _TRANSIENT):
                raise StoreUnavailable(f"{self._store.path}: {failure}") from failure
            raise
        session.end()


def _rollback(conn: psycopg.Connection) -> None:
    if conn.closed:
        return
    # A connection that is gone took its transaction with it: the server rolled it back.
    with contextlib.suppress(psycopg.OperationalError):
        conn.execute("ROLLBACK")


class PgStore:
    """A connection to one lab database on a PostgreSQL server. One per thread."""

    def __init__(self, conn: psycopg.Connection, url: str) -> None:
        self._conn = conn
        self._session = _Session(conn)
        """Every statement of the runtime's goes through here (a transaction's BEGIN with
        its first statement); migrations and wipes use the connection itself."""
        self.path = url
        self.before_transaction: Callable[[], None] | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = True, read_only: bool = False) -> "PgStore":
        """Connect, refuse a schema that is not a lab database we can open, and migrate
        (unless `read_only`, which writes nothing)."""
        try:
            conn = psycopg.connect(
                url, autocommit=True, row_factory=_rows, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as error:
            raise DatabaseError(f"{_safe(url)}: cannot connect ({_first_line(error)})") from None
        conn.adapters.register_loader("numeric", _Number)
        store = cls(conn, _safe(url))
        try:
            store._prepare(create=create, read_only=read_only)
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self, *, create: bool, read_only: bool) -> None:
        conn = self._conn
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            raise DatabaseError(f"{self.path}: the connection's search_path names no schema")
        version = self._inspect(schema)
        if version == 0 and (not create or read_only):
            raise DatabaseError(f"{self.path}: no lab database in schema {schema}")
        if read_only:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            return
        _migrate(conn, schema)

    def _inspect(self, schema: str) -> int:
        """The schema version of the lab database in `schema` (0: none yet, and nothing
        else there either)."""
        tables = {
            row[0]
            for row in self._conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }
        if "fmlab_meta" not in tables:
            if tables:
                raise DatabaseError(
                    f"{self.path}: schema {schema} holds tables that are not a"
                    f" failure-mode-lab database ({', '.join(sorted(tables)[:3])})"
                )
            return 0
        row = self._conn.execute("SELECT application, schema_version FROM fmlab_meta").fetchone()
        if row is None or row[0] != APPLICATION:
            raise DatabaseError(f"{self.path}: not a failure-mode-lab database")
        if row[1] > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path}: schema version {row[1]} is newer than this lab's"
                f" {SCHEMA_VERSION}; upgrade failure-mode-lab"
            )
        return row[1]

    def transaction(self) -> PgTransaction:
        return PgTransaction(self)

    def one(self, sql: str, params: tuple | dict = ()) -> Any:
        return _first(_run(self._session, sql, params))

    def all(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        return _every(_run(self._session, sql, params))

    def tuples(self, sql: str, params: tuple | dict = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.all(sql, params)]

    def events(self, after_seq: int = 0) -> list[Event]:
        return [event(*row) for row in self.all(EVENTS_AFTER, (after_seq,))]

    def schema_version(self) -> int:
        return self._session.execute("SELECT schema_version FROM fmlab_meta").fetchone()[0]

    def schema_cookie(self) -> int:
        """Changes whenever a table or trigger of this schema is made or dropped."""
        row = self._session.execute(
            "SELECT count(*), coalesce(max(c.oid::bigint), 0) + coalesce(sum(t.oid::bigint), 0)"
            " FROM pg_class c LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal"
            " WHERE c.relnamespace = current_schema()::text::regnamespace AND c.relkind = 'r'"
        ).fetchone()
        return hash((row[0], row[1]))

    def triggers(self) -> frozenset[str]:
        rows = self._session.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = current_schema()::text::regnamespace AND NOT t.tgisinternal"
        )
        return frozenset(row[0] for row in rows)

    def now(self) -> float:
        """The server's clock, in seconds since the epoch: the time authority every
        machine sharing this queue agrees on (runtime.clock.DatabaseClock)."""
        try:
            row = self._session.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            return row.fetchone()[0]
        except _TRANSIENT as error:
            raise StoreUnavailable(f"{self.path}: {error}") from error

    def integrity_check(self) -> str:
        """The server's own check of this schema's pages (the amcheck extension): every
        table's heap (`verify_heapam`), every index against its table (`bt_index_check`
        with `heapallindexed`). "ok", or the first problem found. The extension must be in
        schema `public` (`CREATE EXTENSION amcheck SCHEMA public`, as a superuser)."""
        conn = self._conn
        installed = conn.execute(
            "SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'amcheck' AND n.nspname = 'public'"
        ).fetchone()
        if installed is None:
            return "not checked: the amcheck extension is not installed in schema public"
        try:
            relations = conn.execute(
                "SELECT oid, relname, relkind FROM pg_class WHERE relkind IN ('r', 'i')"
                " AND relnamespace = current_schema()::text::regnamespace ORDER BY relname"
            ).fetchall()
            for oid, name, kind in relations:
                if kind == "r":
                    bad = conn.execute(
                        "SELECT blkno, msg FROM public.verify_heapam(%s::oid::regclass) LIMIT 1",
                        (oid,),
                    ).fetchone()
                    if bad is not None:
                        return f"{name}: block {bad[0]}: {bad[1]}"
                else:
                    conn.execute("SELECT public.bt_index_check(%s::oid::regclass, true)", (oid,))
        except psycopg.Error as error:
            return f"{_first_line(error)}"
        return "ok"

    def wipe(self, image: bytes | None = None) -> None:
        """Empty every table and start every id again from 1, as a new lab database: a
        simulator's many seeds on one schema. The log's TRUNCATE refusal is lifted for
        the moment of the wipe, inside its transaction."""
        if image is not None:
            raise ValueError("a PostgreSQL store has no image; wipe() empties it")
        conn = self._conn
        with conn.transaction():
            conn.execute("ALTER TABLE events DISABLE TRIGGER events_are_append_only_truncate")
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
            conn.execute("ALTER TABLE events ENABLE TRIGGER events_are_append_only_truncate")
            conn.execute(
                "UPDATE fmlab_meta SET last_seq = 0"
                + "".join(f", last_{table} = 0" for table in NUMBERED)
            )

    def close(self) -> None:
        self._conn.close()


def _migrate(conn: psycopg.Connection, schema: str) -> None:
    """Bring the schema up to SCHEMA_VERSION, one migration per transaction; processes
    that start together take turns (an advisory lock on the schema's name)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (schema,))
        exists = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'fmlab_meta'",
            (schema,),
        ).fetchone()
        if exists is None:
            conn.execute(META)
            conn.execute(
                "INSERT INTO fmlab_meta (application, schema_version) VALUES (%s, 0)",
                (APPLICATION,),
            )
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (schema,))
            current = conn.execute("SELECT schema_version FROM fmlab_meta FOR UPDATE").fetchone()[0]
            if current >= SCHEMA_VERSION:
                return
            conn.execute(MIGRATIONS[current + 1])
            conn.execute("UPDATE fmlab_meta SET schema_version = %s", (current + 1,))


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
