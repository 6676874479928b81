"""The intent log from the command line, as an operator uses it: record, work, then ask
where things stand. Every command over a database file; bad input is one line on stderr,
exit 2, and nothing on disk changes."""

import hashlib
import json
import sqlite3

import pytest

from runtime.cli import main
from runtime.store import Store
from tests.test_store import add_job


def fmlab(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def session(capsys, db) -> str:
    """The scripted session: 50 intents, a sync target failing 60% of calls, the workers
    run on the database's simulated clock until quiet, then every view, the derived ones
    rebuilt and read back. Returns all it printed."""
    printed = []
    for n in range(50):
        code, out, _ = fmlab(
            capsys, "record", "order.placed", json.dumps({"order": 1000 + n}), "--db", db,
            "--clock", "sim",
        )  # fmt: skip
        assert code == 0 and out == f"{n + 1}\n"
    for argv in (
        ("work", "--sync-fail-rate", "0.6", "--seed", "7"),
        ("status",),
        ("health",),
        ("recent", "3"),
        ("status", "--format", "json"),
        ("health", "--format", "json"),
        ("clusters", "--rebuild"),
        ("severity", "--rebuild"),
        ("clusters",),
        ("severity", "--format", "json"),
    ):
        code, out, err = fmlab(capsys, *argv, "--db", db, "--clock", "sim")
        assert (code, err) == (0, ""), argv
        printed.append(out)
    return "".join(printed)


def test_the_scripted_session_prints_the_same_twice_and_every_intent_ends(capsys, tmp_path):
    first = session(capsys, str(tmp_path / "one.db"))
    second = session(capsys, str(tmp_path / "two.db"))

    assert first == second
    code, out, _ = fmlab(capsys, "status", "--format", "json", "--db", str(tmp_path / "one.db"))
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 50
    assert {row["sync"] for row in rows} <= {"SYNCED", "DEAD"}
    assert all(row["projected"] for row in rows)
    dead = [row for row in rows if row["sync"] == "DEAD"]
    assert all(row["retry_count"] == 5 and row["last_error"] for row in dead)  # budget, reasons
    assert any(row["sync"] == "SYNCED" and row["retry_count"] for row in rows)


def test_status_and_health_read_an_empty_database_as_zeros(capsys, tmp_path):
    db = str(tmp_path / "lab.db")
    Store.open(db).close()

    code, out, _ = fmlab(capsys, "status", "--db", db)
    assert code == 0
    assert out.splitlines()[0].split() == ["intent", "type", "sync", "retries", "projected",
                                           "last", "error"]  # fmt: skip
    assert len(out.splitlines()) == 2  # the header and its rule, no rows
    code, out, _ = fmlab(capsys, "health", "--db", db, "--format", "json")
    report = json.loads(out)
    assert report["intents"] == 0 and report["dead_letters"] == 0
    assert report["by_sync"] == {"PENDING": 0, "SYNCED": 0, "FAILED": 0, "DEAD": 0}


def test_an_operator_redrives_a_dead_intent_and_it_syncs(capsys, tmp_path):
    db = str(tmp_path / "lab.db")
    fmlab(capsys, "record", "order.placed", '{"order": 1}', "--db", db, "--clock", "sim")
    fmlab(capsys, "work", "--sync-fail-rate", "1", "--db", db, "--clock", "sim")
    code, out, _ = fmlab(capsys, "recent", "1", "--db", db, "--format", "json")
    assert json.loads(out)[0]["sync"] == "DEAD"

    assert fmlab(capsys, "redrive", "1", "--db", db, "--reason", "target fixed")[0] == 0
    fmlab(capsys, "work", "--db", db, "--clock", "sim")

    code, out, _ = fmlab(capsys, "recent", "1", "--db", db, "--format", "json")
    assert code == 0
    [row] = json.loads(out)
    assert (row["sync"], row["retry_count"]) == ("SYNCED", 5)


def test_annotate_appends_a_note_and_prints_its_seq(capsys, tmp_path):
    db = str(tmp_path / "lab.db")
    fmlab(capsys, "record", "order.placed", '{"order": 1}', "--db", db)

    code, out, _ = fmlab(capsys, "annotate", "1", "customer called", "--db", db, "--author", "ana")
    assert code == 0
    seq = int(out)
    store = Store.open(db, read_only=True)
    [note] = [e for e in store.events() if e.seq == seq]
    store.close()
    assert note.detail == {"on": "intent", "target": 1, "note": "customer called", "author": "ana"}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("annotate", "9", "a note"), "no intent 9"),
        (("annotate", "999", "a note", "--event"), "no event 999"),
        (("redrive", "9"), "no intent 9"),
        (("redrive", "1"), "intent 1's sync is not DEAD (PENDING): nothing to redrive"),
        (("record", "order.placed", "{not json"), "payload is not JSON"),
        (("record", "order.placed", "[1, 2]"), "payload must be a JSON object"),
        (("record", " ", "{}"), "must be a non-empty string"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(capsys, tmp_path, argv, message):
    db = tmp_path / "lab.db"
    fmlab(capsys, "record", "order.placed", '{"order": 1}', "--db", str(db))
    before = digest(db)

    code, out, err = fmlab(capsys, *argv, "--db", str(db))

    assert (code, out) == (2, "")
    assert err.startswith("fmlab: error: ") and message in err and err.count("\n") == 1
    assert digest(db) == before


@pytest.mark.parametrize("command", ["status", "recent", "health"])
def test_reading_a_missing_database_is_refused_and_creates_nothing(capsys, tmp_path, command):
    db = tmp_path / "missing.db"

    code, _, err = fmlab(capsys, command, "--db", str(db))

    assert code == 2 and "no such database file" in err
    assert not db.exists()


def test_a_bad_flag_is_refused_before_anything_runs(capsys, tmp_path):
    db = tmp_path / "lab.db"

    code, out, err = fmlab(capsys, "work", "--sync-fail-rate", "1.5", "--db", str(db))

    assert (code, out) == (2, "")
    assert "between 0 and 1" in err and err.count("\n") == 1
    assert not db.exists()


def test_a_database_from_before_the_intent_log_reads_as_no_intents(capsys, tmp_path):
    """A schema-1 file opened read-only is not migrated; it simply has no intents."""
    db = tmp_path / "old.db"
    store = Store.open(db)
    add_job(store)
    store.close()
    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE intents; DROP TABLE accounts; PRAGMA user_version = 1;")
    conn.close()

    code, out, _ = fmlab(capsys, "health", "--db", str(db), "--format", "json")
    assert code == 0
    assert json.loads(out)["intents"] == 0


def test_a_sync_slower_than_its_lease_is_never_confirmed_and_the_check_says_so(capsys, tmp_path):
    """The fault plan's latency: each call to the target takes 40 s of simulated time, past
    the 30 s lease. Every attempt's commit after its call is refused by the fence, so no
    sync is ever confirmed: each goes DEAD once its budget is spent, with the lost lease as
    its cause. The target holds each order once (its idempotency key absorbed the
    retries' calls), and INV_002 names every call that applied and was never confirmed:
    what a reconciliation with the target has to settle. The remedy is a lease longer than
    the slowest call, or heartbeats during it."""
    db = str(tmp_path / "lab.db")
    for n in range(3):
        order = json.dumps({"order": n})
        fmlab(capsys, "record", "order.placed", order, "--db", db, "--clock", "sim")

    code, _, _ = fmlab(capsys, "work", "--sync-latency", "40", "--db", db, "--clock", "sim")
    assert code == 0

    code, out, _ = fmlab(capsys, "status", "--format", "json", "--db", db)
    rows = json.loads(out)
    assert [(r["sync"], r["retry_count"]) for r in rows] == [("DEAD", 5)] * 3
    assert all(
        r["last_error"].startswith("lease of w") and r["last_error"].endswith("; attempts spent")
        for r in rows
    )
    store = Store.open(db, read_only=True)
    try:
        synced = store.one("SELECT count(*) FROM effects WHERE sink = 'sync_target'")[0]
        refused = [e for e in store.events() if e.type == "lease.lost"]
    finally:
        store.close()
    assert synced == 3  # one per order at the target, however many calls
    assert len(refused) == 3 * 5  # every attempt's commit, refused
    code, out, _ = fmlab(capsys, "check", "--db", db, "--final")
    assert code == 1
    assert out.count("INV_002: execution") == 3


def test_a_negative_latency_is_refused(capsys, tmp_path):
    db = tmp_path / "lab.db"
    code, out, err = fmlab(capsys, "work", "--sync-latency", "-1", "--db", str(db))
    assert (code, out) == (2, "")
    assert "0 s or more" in err and not db.exists()
