"""`fmlab`, as a person uses it: list, show, run (timeline + verdict + exit code), and the
commands over a database file. Exit 0 = every invariant holds, 1 = one is violated."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.cli import main

FMLAB = Path(sys.executable).parent / "fmlab"


def fmlab(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_each_failure_mode_with_its_lever(capsys):
    code, out, _ = fmlab(capsys, "list")
    assert code == 0
    assert "FM_001" in out and "commit_boundary" in out and "INV_001" in out


@pytest.mark.parametrize("name", ["FM_001", "fm1", "1", "FM_001_duplicate_retry"])
def test_show_prints_the_spec(capsys, name):
    code, out, _ = fmlab(capsys, "show", name)
    assert code == 0
    assert out.startswith("# FM_001: Duplicate effect on retry")


def test_show_of_a_bundle_without_its_spec_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path):
    """A bundle still being written (no spec.md yet) is a usage error, not a traceback."""
    from failure_modes import catalog

    real = catalog.find("FM_001")
    monkeypatch.setattr(catalog, "find", lambda name: replace(real, folder=tmp_path))

    code, out, err = fmlab(capsys, "show", "FM_001")

    assert (code, out) == (2, "")
    assert err == "fmlab: error: FM_001 has no spec.md yet\n"


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`fmlab explore ... | head`: the reader goes away after two lines. The command stops
    as one killed by SIGPIPE would (141), with nothing on stderr."""
    explore = subprocess.Popen(
        [str(FMLAB), "explore", "FM_001", "--seeds", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line leaves as it is printed
    )
    assert explore.stdout is not None and explore.stderr is not None
    explore.stdout.readline()
    explore.stdout.close()
    err = explore.stderr.read()
    explore.stderr.close()

    assert explore.wait() == 141
    assert err == b""


def test_run_baseline_shows_the_break_and_exits_1(capsys):
    code, out, err = fmlab(capsys, "run", "FM_001", "--policy", "baseline")
    assert code == 1 and err == ""
    assert "VERDICT: violated INV_001, INV_002" in out
    assert "!! fault.crash" in out  # the timeline shows where the harness broke it


def test_run_guarded_shows_the_fix_and_exits_0(capsys):
    code, out, _ = fmlab(capsys, "run", "FM_001", "--policy", "guarded")
    assert code == 0
    assert out.rstrip().endswith("VERDICT: every invariant holds")


def test_run_formats(capsys):
    _, mermaid, _ = fmlab(capsys, "run", "FM_001", "--format", "mermaid")
    assert mermaid.startswith("sequenceDiagram\n")
    assert "Note over store: INV_001 violated" in mermaid
    _, raw, _ = fmlab(capsys, "run", "FM_001", "--format", "json")
    document = json.loads(raw)
    assert document["verdict"] == "violated"
    assert {v["inv"] for v in document["violations"]} == {"INV_001", "INV_002"}
    [duplicate] = [v for v in document["violations"] if v["inv"] == "INV_001"]
    assert duplicate["evidence"]["executions"] == [1, 2]


@pytest.mark.parametrize("fmt", ["text", "mermaid", "json"])
def test_one_seed_prints_the_same_bytes_every_time(capsys, fmt):
    runs = [fmlab(capsys, "run", "FM_001", "--seed", "7", "--format", fmt) for _ in range(2)]
    assert runs[0] == runs[1]


def test_the_installed_command_is_deterministic_across_processes():
    """Separate processes, same seed: byte-identical output (no hash seeds, no wall time)."""
    outputs = [
        subprocess.run(
            [FMLAB, "run", "FM_001", "--policy", "baseline", "--seed", "3"],
            capture_output=True,
            check=False,
        )
        for _ in range(2)
    ]
    assert outputs[0].returncode == outputs[1].returncode
    assert outputs[0].stdout == outputs[1].stdout and outputs[0].stdout


def test_seeds_explore_different_timelines(capsys):
    timelines = {fmlab(capsys, "run", "FM_001", "--seed", str(seed))[1] for seed in range(10)}
    assert len(timelines) == 10


def test_a_saved_run_is_checked_again_from_the_file(capsys, tmp_path):
    db = tmp_path / "run.db"
    code, _, _ = fmlab(capsys, "run", "FM_001", "--db", str(db))
    assert code == 1 and db.exists()

    code, out, _ = fmlab(capsys, "check", "--db", str(db))
    assert code == 1 and "INV_001" in out

    code, out, _ = fmlab(capsys, "timeline", "--db", str(db))
    assert code == 0 and "effect.applied" in out


def test_submit_then_check(capsys, tmp_path):
    db = str(tmp_path / "lab.db")
    assert fmlab(capsys, "submit", "award_points", '{"order": 7}', "--db", db)[1] == "1\n"
    again = fmlab(capsys, "submit", "award_points", '{"order": 7}', "--db", db, "--key", "o7")
    assert again[1] == "2\n"
    same_key = fmlab(capsys, "submit", "award_points", '{"order": 7}', "--db", db, "--key", "o7")
    assert same_key[1] == "2\n"  # the idempotency key returns the first job

    assert fmlab(capsys, "check", "--db", db)[0] == 0  # pending work is fine mid-run...
    code, out, _ = fmlab(capsys, "check", "--db", db, "--final")
    assert code == 1 and "INV_004" in out  # ...but not when the run is declared over


# --- the simulator's commands ---------------------------------------------------------


def test_explore_baseline_finds_shrinks_and_exits_1(capsys):
    code, out, err = fmlab(capsys, "explore", "FM_001", "--seeds", "40")
    assert code == 1 and err == ""
    assert "violations: INV_001 in" in out
    [shrunk] = [line for line in out.splitlines() if line.startswith("shrunk seed ")]
    assert "(INV_001)" in shrunk
    assert int(shrunk.split("-> ")[1].split(" steps")[0]) <= 10, shrunk
    assert "fault after w1 effect_applied: " in out
    assert out.rstrip().endswith("(jobs [1], executions [1], events [4])")


def test_explore_guarded_holds_with_its_marks_and_exits_0(capsys):
    code, out, _ = fmlab(capsys, "explore", "FM_001", "--policy", "guarded", "--seeds", "300")
    assert code == 0
    assert "violations: none" in out
    assert "effect.absorbed" in out


@pytest.mark.campaign  # 600 seeds, twice, one run on two processes
def test_explore_gives_the_same_findings_on_two_processes(capsys):
    def findings(*extra: str) -> list[str]:
        _, out, _ = fmlab(capsys, "explore", "FM_001", "--seeds", "600", *extra)
        return [line for line in out.splitlines() if not line.startswith("seeds ")]

    assert findings("--processes", "2") == findings()


def test_a_saved_tape_replays_the_shrunk_run_byte_for_byte(tmp_path, capsys):
    tape = tmp_path / "shrunk.json"
    code, out, _ = fmlab(capsys, "explore", "FM_001", "--seeds", "40", "--save-tape", str(tape))
    assert code == 1 and f"--tape {tape}" in out
    shrunk_timeline = out[out.index("FM_001 shrunk schedule") :].split("\n", 1)[1]

    first = fmlab(capsys, "replay", "FM_001", "--tape", str(tape))
    second = fmlab(capsys, "replay", "FM_001", "--tape", str(tape))
    assert first == second and first[0] == 1
    assert first[1].split("\n", 1)[1] == shrunk_timeline


def test_replay_of_a_seed_is_the_same_bytes_in_another_process():
    """Separate processes have different string-hash seeds: nothing may depend on them."""
    argv = [str(FMLAB), "replay", "FM_001", "--seed", "5", "--format", "json"]
    runs = [subprocess.run(argv, capture_output=True, check=False) for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout
    assert runs[0].returncode == runs[1].returncode


def test_determinism_reports_no_mismatch(capsys):
    code, out, _ = fmlab(capsys, "determinism", "FM_001", "--seeds", "50")
    assert code == 0
    assert out == "FM_001: 50 seeds run twice, 0 mismatches\n"
