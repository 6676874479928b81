"""Bad input gets one clear line on stderr, exit 2, and nothing on disk changes.

Each case runs `fmlab` in a folder holding a few database files, and compares every file's
name and bytes before and after.
"""

import json
import sqlite3
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.schema import SCHEMA_VERSION
from runtime.store import Store


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A working folder with one of each kind of database file."""
    monkeypatch.chdir(tmp_path)
    lab = Store.open(tmp_path / "lab.db")
    lab.close()

    (tmp_path / "empty.db").write_bytes(b"")
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n")

    corrupt = bytearray((tmp_path / "lab.db").read_bytes())
    corrupt[100:] = b"\xff" * (len(corrupt) - 100)
    (tmp_path / "corrupt.db").write_bytes(bytes(corrupt))

    foreign = sqlite3.connect(tmp_path / "foreign.db")
    foreign.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    foreign.commit()
    foreign.close()

    (tmp_path / "other.json").write_text('{"hello": 1}\n')
    tape = {"fmlab_tape": 1, "fm": "FM_001", "policy": "baseline", "scheduler": "random"}
    tape |= {"jobs": 1, "workers": 2, "tape": [0]}
    for name, wrong in {
        "negative": {"tape": [0, -1]},
        "no_fm": {"fm": "FM_999"},
        "bad_inv": {"inv": "INV_999"},
        "bad_policy": {"policy": "yolo"},
    }.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(tape | wrong))

    newer = Store.open(tmp_path / "newer.db")
    newer.close()
    bump = sqlite3.connect(tmp_path / "newer.db")
    bump.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    bump.close()
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


CASES = {
    "unknown FM": (["run", "FM_999"], "unknown failure mode 'FM_999'"),
    "unknown FM to show": (["show", "nonsense"], "unknown failure mode"),
    "unknown command": (["explode"], "invalid choice: 'explode'"),
    "no command": ([], "required: command"),
    "unknown flag": (["run", "FM_001", "--fast"], "unrecognized arguments: --fast"),
    "bad policy": (["run", "FM_001", "--policy", "yolo"], "invalid choice: 'yolo'"),
    "seed not a number": (["run", "FM_001", "--seed", "abc"], "seed must be a whole number"),
    "negative seed": (["run", "FM_001", "--seed", "-1"], "seed must not be negative"),
    "bad format": (["run", "FM_001", "--format", "pdf"], "invalid choice: 'pdf'"),
    "run over an existing file": (["run", "FM_001", "--db", "lab.db"], "already exists"),
    "missing database": (["check", "--db", "missing.db"], "no such database file"),
    "empty file": (["check", "--db", "empty.db"], "empty"),
    "not SQLite": (["timeline", "--db", "notes.db"], "not a SQLite database"),
    "corrupt": (["check", "--db", "corrupt.db"], "corrupt"),
    "foreign": (["check", "--db", "foreign.db"], "not a failure-mode-lab database"),
    "newer schema": (["timeline", "--db", "newer.db"], "is newer than this lab's"),
    "submit to foreign": (["submit", "k", "{}", "--db", "foreign.db"], "not a failure-mode-lab"),
    "submit to newer": (["submit", "k", "{}", "--db", "newer.db"], "is newer than this lab's"),
    "payload not JSON": (["submit", "k", "{oops", "--db", "lab.db"], "payload is not JSON"),
    "payload not an object": (["submit", "k", "[1, 2]", "--db", "lab.db"], "JSON object"),
    "payload to a new file": (["submit", "k", "{oops", "--db", "new.db"], "payload is not JSON"),
    "empty kind": (["submit", " ", "{}", "--db", "lab.db"], "kind must be a non-empty"),
    "explore unknown FM": (["explore", "FM_999"], "unknown failure mode 'FM_999'"),
    "explore no seeds": (["explore", "FM_001", "--seeds", "0"], "must be at least 1"),
    "explore seeds not a number": (["explore", "1", "--seeds", "many"], "must be a whole number"),
    "explore bad scheduler": (["explore", "1", "--scheduler", "fifo"], "invalid choice: 'fifo'"),
    "explore no jobs": (["explore", "1", "--jobs", "0"], "must be at least 1"),
    "explore no processes": (["explore", "1", "--processes", "0"], "must be at least 1"),
    "tape over a file": (["explore", "1", "--save-tape", "lab.db"], "already exists"),
    "replay from nothing": (["replay", "FM_001"], "one of the arguments --seed --tape"),
    "replay from both": (["replay", "1", "--seed", "1", "--tape", "x.json"], "not allowed"),
    "replay missing tape": (["replay", "1", "--tape", "missing.json"], "no such tape file"),
    "replay a database": (["replay", "1", "--tape", "lab.db"], "not a tape file"),
    "replay other JSON": (["replay", "1", "--tape", "other.json"], "not an fmlab tape"),
    "replay negative answers": (["replay", "1", "--tape", "negative.json"], "whole numbers >= 0"),
    "replay tape of no FM": (["replay", "1", "--tape", "no_fm.json"], "unknown failure mode"),
    "replay tape bad inv": (["replay", "1", "--tape", "bad_inv.json"], "must name an invariant"),
    "replay tape bad policy": (["replay", "1", "--tape", "bad_policy.json"], "unknown policy"),
    "determinism no seeds": (["determinism", "1", "--seeds", "0"], "must be at least 1"),
    "intent log on PostgreSQL": (
        ["record", "order.placed", "{}", "--db", "postgresql://nobody@127.0.0.1:1/x"],
        "runs on a SQLite file only",
    ),
    "tickets on PostgreSQL": (
        ["serve", "--db", "postgresql://nobody@127.0.0.1:1/x"],
        "runs on a SQLite file only",
    ),
    "no PostgreSQL server": (
        ["check", "--db", "postgresql://nobody@127.0.0.1:1/x"],
        "cannot connect",
    ),
}


@pytest.mark.parametrize("argv,says", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2_and_changes_nothing(folder, capsys, argv, says):
    before = snapshot(folder)

    code = main(argv)

    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fmlab: error: "), err
    assert says in err
    assert out == ""
    assert snapshot(folder) == before


def test_reading_a_good_database_changes_nothing_either(folder, capsys):
    before = snapshot(folder)
    assert main(["check", "--db", "lab.db"]) == 0
    assert main(["timeline", "--db", "lab.db"]) == 0
    capsys.readouterr()
    assert snapshot(folder) == before
