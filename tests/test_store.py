"""The durable store: a schema it owns, an append-only log the database itself defends,
one transaction per operation, and a refusal to touch any file that is not a lab database.

Prior art: cosmicpython's unit-of-work tests (`test_rolls_back_uncommitted_work_by_default`)
and sqlite-utils' habit of testing against real SQLite files, not mocks.
"""

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runtime.errors import DatabaseError, StoreUnavailable
from runtime.queue import _EXPIRED_LEASES, _EXPIRED_SQL
from runtime.schema import APPLICATION_ID, SCHEMA_VERSION
from runtime.store import Store, dumps
from tests.support import schema_1_file

TABLES = {
    "jobs", "executions", "effects", "events", "accounts", "intents", "failure_clusters",
    "severities", "tickets", "ticket_changes", "ticket_views", "ticket_status_counts",
}  # fmt: skip


def add_job(store: Store, kind: str = "award_points") -> int:
    """A job row and its event, written the way every operation writes: one transaction."""
    with store.transaction() as tx:
        cursor = tx.execute(
            "INSERT INTO jobs (kind, payload, state, max_attempts, run_at, created_at,"
            " updated_at) VALUES (?, '{}', 'PENDING', 3, 0.0, 0.0, 0.0)",
            (kind,),
        )
        tx.event(0.0, "job.submitted", job=cursor.lastrowid, job_state=[None, "PENDING"])
    return cursor.lastrowid


def lab_file(folder: Path, name: str = "lab.db", *, jobs: int = 0) -> Path:
    """A closed lab database file holding `jobs` jobs."""
    path = folder / name
    store = Store.open(path)
    for n in range(jobs):
        add_job(store, kind=f"kind-{n}-" + "x" * 200)  # long rows, so the file spans pages
    store.close()
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in `folder`, by name, with its bytes: "nothing changed" made checkable."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- schema ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    """The two places a store lives; every schema guarantee holds in both."""
    opened = Store.memory() if request.param == "memory" else Store.open(tmp_path / "lab.db")
    yield opened
    opened.close()


def test_a_new_database_is_at_the_current_schema_and_marked_as_ours(store):
    assert store.schema_version() == SCHEMA_VERSION
    assert store.one("PRAGMA user_version")[0] == SCHEMA_VERSION
    assert store.one("PRAGMA application_id")[0] == APPLICATION_ID
    tables = {r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == TABLES


def test_a_database_of_an_older_schema_is_migrated_on_open_and_keeps_its_rows(tmp_path):
    """Schema 2 added `accounts`, 3 `intents`, 4 the derived failure views, 5 the tickets
    service's tables, 6 their idempotency keys, 7 an index of the ready jobs alone, 8 one of
    the open executions alone; a file made at schema 1 gains them all, one migration per
    transaction, and loses nothing it held. The lease's query then finds its job through
    the new index, and the reaper's looks for expired leases read the other."""
    path = tmp_path / "v1.db"
    schema_1_file(path, with_job=True)

    store = Store.open(path)

    assert store.schema_version() == SCHEMA_VERSION == 8
    assert store.one("SELECT count(*) FROM accounts")[0] == 0
    assert store.one("SELECT count(*) FROM tickets")[0] == 0
    assert store.one("SELECT count(*) FROM intents")[0] == 0
    assert store.one("SELECT kind FROM jobs WHERE id = 1")[0] == "award_points"
    ready = "SELECT id FROM jobs WHERE state = 'PENDING' AND run_at <= ? ORDER BY run_at, id"
    assert store.one(ready, (1e12,))[0] == 1
    plan = " ".join(row[3] for row in store.all("EXPLAIN QUERY PLAN " + ready, (1e12,)))
    assert "USING INDEX jobs_ready" in plan
    for expired in (_EXPIRED_SQL, f"SELECT 1 {_EXPIRED_LEASES} LIMIT 1"):
        plan = " ".join(row[3] for row in store.all("EXPLAIN QUERY PLAN " + expired, (0.0,)))
        assert "SEARCH e USING INDEX executions_open" in plan, plan


def test_file_databases_run_in_wal_mode_with_synchronous_full(tmp_path):
    """WAL lets a reader look while a worker writes; FULL means a returned commit is on disk."""
    store = Store.open(tmp_path / "lab.db")

    assert store.one("PRAGMA journal_mode")[0] == "wal"
    assert store.one("PRAGMA synchronous")[0] == 2  # 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
    store.close()


# --- the event log is append-only -----------------------------------------------------


@pytest.mark.parametrize(
    "sql,refused",
    [
        ("UPDATE events SET type = 'job.rewritten' WHERE seq = 1", "UPDATE refused"),
        ("DELETE FROM events WHERE seq = 1", "DELETE refused"),
        ("DELETE FROM events", "DELETE refused"),
    ],
)
def test_the_database_itself_refuses_to_rewrite_history(store, sql, refused):
    """Not a Python check that a bug could skip: triggers in the schema raise on any edit."""
    add_job(store)
    before = store.events()

    with pytest.raises(sqlite3.IntegrityError, match=refused), store.transaction() as tx:
        tx.execute(sql)
    assert store.events() == before


def test_event_seqs_count_up_without_gaps(store):
    with store.transaction() as tx:
        seqs = [tx.event(float(n), "lab.noted", n=n) for n in range(3)]

    assert seqs == [1, 2, 3]
    assert [(e.seq, e.type, e.detail) for e in store.events(after_seq=1)] == [
        (2, "lab.noted", {"n": 1}),
        (3, "lab.noted", {"n": 2}),
    ]


# --- transactions ---------------------------------------------------------------------


def test_rolls_back_uncommitted_work_by_default(store):
    """An operation that raises half-way leaves nothing behind: not the row, not the event."""
    with pytest.raises(RuntimeError, match="crashed mid-operation"), store.transaction() as tx:
        tx.execute(
            "INSERT INTO jobs (kind, payload, state, max_attempts, run_at, created_at,"
            " updated_at) VALUES ('award_points', '{}', 'PENDING', 3, 0.0, 0.0, 0.0)"
        )
        tx.event(0.0, "job.submitted", job=1)
        raise RuntimeError("crashed mid-operation")

    assert store.all("SELECT * FROM jobs") == []
    assert store.events() == []


def test_rolls_back_on_interrupts_too(store):
    """Ctrl-C is not an Exception, and must not leave a half-written operation either."""
    with pytest.raises(KeyboardInterrupt), store.transaction() as tx:
        tx.event(0.0, "lab.noted")
        raise KeyboardInterrupt

    assert store.events() == []


def test_committed_work_stays_and_the_store_stays_usable_after_a_rollback(store):
    first = add_job(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.event(1.0, "lab.noted")
        raise RuntimeError("boom")
    second = add_job(store)

    assert [r["id"] for r in store.all("SELECT id FROM jobs ORDER BY id")] == [first, second]
    assert [e.seq for e in store.events()] == [1, 2]  # the rolled-back seq was never used


def test_reopening_a_lab_file_keeps_its_data(tmp_path):
    path = lab_file(tmp_path, jobs=2)

    store = Store.open(path, create=False)

    assert store.schema_version() == SCHEMA_VERSION
    assert [r["kind"][:6] for r in store.all("SELECT kind FROM jobs ORDER BY id")] == [
        "kind-0",
        "kind-1",
    ]
    assert [e.type for e in store.events()] == ["job.submitted", "job.submitted"]
    assert add_job(store) == 3  # and it carries on where it left off
    store.close()


# --- files that are not ours ----------------------------------------------------------


def truncated(folder: Path) -> Path:
    """A lab database cut short, as a full disk or an interrupted copy leaves it."""
    whole = lab_file(folder, "whole.db", jobs=60).read_bytes()
    (folder / "whole.db").unlink()
    path = folder / "truncated.db"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def garbled(folder: Path, *, page: int) -> Path:
    """A lab database with one page overwritten with junk (bit rot, a bad copy)."""
    whole = bytearray(lab_file(folder, "whole.db", jobs=60).read_bytes())
    (folder / "whole.db").unlink()
    page_size = int.from_bytes(whole[16:18], "big")
    start = (page - 1) * page_size + (100 if page == 1 else 0)  # keep the file header
    whole[start : start + 400] = b"\x5a" * 400
    path = folder / f"garbled-page-{page}.db"
    path.write_bytes(bytes(whole))
    return path


def foreign(folder: Path) -> Path:
    """Someone else's SQLite database, in WAL mode like ours, so it looks the most alike."""
    path = folder / "invoices.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.99)")
    conn.commit()
    conn.close()
    return path


def newer(folder: Path) -> Path:
    """A lab database written by a later version of the lab, with a schema we don't know."""
    path = lab_file(folder, "newer.db", jobs=1)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return path


def empty(folder: Path) -> Path:
    path = folder / "empty.db"
    path.write_bytes(b"")
    return path


def text(folder: Path) -> Path:
    path = folder / "notes.db"
    path.write_text("these are my notes, not a database\n")
    return path


NOT_OURS = {
    "empty file": (empty, "empty"),
    "not SQLite": (text, "not a SQLite database"),
    "truncated": (truncated, "corrupt database"),
    "garbled header page": (lambda folder: garbled(folder, page=1), "corrupt database"),
    "garbled later page": (lambda folder: garbled(folder, page=4), "corrupt database"),
    "foreign": (foreign, "not a failure-mode-lab database"),
    "newer schema": (newer, f"is newer than this lab's {SCHEMA_VERSION}"),
}


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize("make,says", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_refuses_a_file_that_is_not_a_lab_database_and_leaves_it_untouched(
    tmp_path, make, says, read_only
):
    """Refused before anything is written: same bytes, and no -wal/-shm files beside it."""
    path = make(tmp_path)
    before = snapshot(tmp_path)

    with pytest.raises(DatabaseError, match=says):
        Store.open(path, create=True, read_only=read_only)

    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "options", [{"create": False}, {"read_only": True}], ids=["create=False", "read_only=True"]
)
def test_refuses_a_missing_file_unless_asked_to_create_it(tmp_path, options):
    with pytest.raises(DatabaseError, match="no such database file"):
        Store.open(tmp_path / "missing.db", **options)

    assert snapshot(tmp_path) == {}


def test_creates_a_missing_file_when_asked(tmp_path):
    store = Store.open(tmp_path / "new.db", create=True)

    assert store.schema_version() == SCHEMA_VERSION
    store.close()
    assert (tmp_path / "new.db").exists()


# --- read-only ------------------------------------------------------------------------


def test_read_only_reads_and_never_writes(tmp_path):
    path = lab_file(tmp_path, jobs=2)
    before = snapshot(tmp_path)

    store = Store.open(path, read_only=True)
    assert [e.type for e in store.events()] == ["job.submitted", "job.submitted"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"), store.transaction() as tx:
        tx.event(1.0, "lab.noted")
    store.close()

    assert snapshot(tmp_path) == before  # not even -wal/-shm files appeared


@pytest.mark.parametrize("name", ["lab#1.db", "what?.db", "100%.db"])
def test_paths_with_uri_characters_are_opened_as_named(tmp_path, name):
    """Read-only opens go through an SQLite URI, where '#', '?' and '%' mean something."""
    path = lab_file(tmp_path, name, jobs=1)

    store = Store.open(path, read_only=True)
    assert [e.type for e in store.events()] == ["job.submitted"]
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no stray file beside it


# --- canonical JSON -------------------------------------------------------------------


def test_dumps_is_canonical_json():
    """Equal values give equal bytes, so same seed means byte-identical timelines."""
    assert dumps({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dumps_refuses_what_json_cannot_hold(value):
    """Python writes NaN and Infinity, which are not JSON; the database would refuse them
    later with a less helpful error, so refuse them here."""
    with pytest.raises(ValueError, match="JSON compliant"):
        dumps({"points": value})


def test_opening_a_store_keeps_the_locks_that_other_connections_of_this_process_hold(tmp_path):
    """A server opens a Store per request thread while other threads' connections are
    open. The open must not read the file by hand: closing that descriptor drops this
    process's POSIX locks on it, and another process that then closes its own connection
    believes it is the last one, checkpoints, and deletes the WAL file under everyone
    still using it (the corruption a rebuild under load once showed)."""
    path = tmp_path / "lab.db"
    holder = Store.open(path)
    holder.one("SELECT count(*) FROM events")
    Store.open(path).close()  # a second open, in this process, while `holder` is open

    other = subprocess.run([sys.executable, "-c", _WRITE_AND_CLOSE, str(path)], check=True)

    assert other.returncode == 0
    assert Path(f"{path}-wal").exists(), "the WAL was deleted while a connection used it"
    holder.close()


_WRITE_AND_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO events (at, type, detail) VALUES (0, 'lab.note', '{}')")
conn.close()
"""


# --- contention (FM_023) -----------------------------------------------------------------


def held_lock(path: Path) -> sqlite3.Connection:
    """Another writer of the file, in the middle of a transaction: it holds the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO accounts (name, balance, opened_balance) VALUES ('x', 0, 0)")
    return other


def test_a_store_that_does_not_wait_is_refused_at_once_for_a_held_lock(tmp_path):
    path = tmp_path / "lab.db"
    Store.open(path).close()
    naive = Store.open(path, wait_for_lock=False)
    other = held_lock(path)
    try:
        with (
            pytest.raises(StoreUnavailable, match="database is locked") as refused,
            naive.transaction() as tx,
        ):
            tx.event(0.0, "test.written")
        assert refused.value.busy
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert naive.events() == []


def test_a_deferred_transaction_is_refused_when_another_writer_commits_under_it(tmp_path):
    """The trap a busy timeout does not cover: the deferred transaction read first, another
    writer committed, and SQLite refuses the upgrade at once (SQLITE_BUSY_SNAPSHOT)."""
    path = tmp_path / "lab.db"
    Store.open(path).close()
    naive = Store.open(path, wait_for_lock=False)
    naive._conn.execute("PRAGMA busy_timeout = 5000")  # waiting would not help
    with pytest.raises(StoreUnavailable) as refused, naive.transaction() as tx:
        tx.one("SELECT count(*) FROM events")  # the read snapshot
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("INSERT INTO accounts (name, balance, opened_balance) VALUES ('y', 0, 0)")
        other.close()
        tx.event(0.0, "test.written")
    assert refused.value.busy
    assert refused.value.__cause__.sqlite_errorcode == 517  # SQLITE_BUSY_SNAPSHOT


def test_a_store_that_waits_gets_the_lock_when_the_other_writer_commits(tmp_path):
    path = tmp_path / "lab.db"
    Store.open(path).close()
    store = Store.open(path)
    other = held_lock(path)
    release = threading.Timer(0.2, other.execute, ("COMMIT",))
    release.start()
    try:
        with store.transaction() as tx:
            tx.event(0.0, "test.written")
    finally:
        release.join()
        other.close()
    assert [e.type for e in store.events()] == ["test.written"]
