"""The determinism fence: in runtime/, ruff bans every way of reading the wall or global
randomness (banned-api, TID251); tests/ may use them.

The rule lives in runtime/ruff.toml, which extends the project config for that folder only.
These tests feed ruff the same probe source under two file names, so a config change that
silently drops the fence (or spreads it to tests/) turns red here, not in a flaky timeline.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WALL_AND_GLOBAL_RANDOMNESS = """\
import random
import time
from datetime import datetime


def jitter() -> float:
    return time.time() + random.random()


def stamp() -> datetime:
    return datetime.now()
"""

SEEDED_RANDOMNESS = """\
import random


def jitter(seed: int) -> float:
    rng = random.Random(seed)
    return rng.uniform(0.0, 1.0)
"""


def banned_calls(source: str, *, as_file: str) -> list[tuple[int, str]]:
    """(line, message) of each TID251 ruff reports for `source` checked as if at `as_file`."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--output-format",
            "json",
            "--stdin-filename",
            as_file,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr  # 2 would mean ruff itself failed
    findings = json.loads(completed.stdout)
    return [(f["location"]["row"], f["message"]) for f in findings if f["code"] == "TID251"]


def test_runtime_code_may_not_read_the_wall_or_global_randomness():
    found = banned_calls(WALL_AND_GLOBAL_RANDOMNESS, as_file="runtime/probe.py")

    assert [(line, message.split(" is banned")[0]) for line, message in found] == [
        (7, "`time.time`"),
        (7, "`random.random`"),
        (11, "`datetime.datetime.now`"),
    ]
    assert all("is banned" in message for _, message in found)


def test_tests_may_read_the_wall():
    """The fence is for the system under test; a test may freeze or read time as it likes."""
    assert banned_calls(WALL_AND_GLOBAL_RANDOMNESS, as_file="tests/probe.py") == []


def test_a_seeded_random_instance_is_allowed_in_runtime_code():
    """Randomness is fine when it is one seeded `random.Random` passed in: it replays."""
    assert banned_calls(SEEDED_RANDOMNESS, as_file="runtime/probe.py") == []


def test_the_runtime_as_it_stands_is_inside_the_fence():
    """The one sanctioned wall read (SystemClock) carries its `noqa`; nothing else slips."""
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", "runtime"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
