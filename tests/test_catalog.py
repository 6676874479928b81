"""The catalog keeps itself honest: every failure mode is a complete, working proof bundle.

Prior art: sqlite-utils' documentation tests. A failure mode that is missing a section, cites
an invariant that does not exist, is left out of the index, or whose repro would pass with
the guard on, fails here, not in a reader's head.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from failure_modes import catalog, index
from runtime.explore import explore
from runtime.invariants import BY_ID
from runtime.policies import GUARDED, LEVERS

REPO = Path(__file__).resolve().parent.parent
FAILURE_MODES = catalog.discover()
IDS = [fm.meta.id for fm in FAILURE_MODES]


def test_the_catalog_is_not_empty():
    assert IDS, "no failure_modes/FM_NNN_* folder was found"


@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_each_failure_mode_is_a_complete_bundle(fm):
    assert catalog.bundle_problems(fm.folder) == []


@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_the_baseline_turns_off_exactly_one_lever(fm):
    assert fm.baseline.levers_off() == (fm.meta.lever,)
    assert fm.policies("guarded") == GUARDED


@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_the_break_needs_the_lever_off_and_the_fix_needs_it_on(fm):
    """A repro that would still pass with the guard on proves nothing, and vice versa."""
    broken = fm.run(fm.baseline)
    assert set(fm.meta.invariants) <= set(broken.violated()), broken.violations
    assert fm.run(GUARDED).violations == []


@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_violations_carry_evidence(fm):
    """Every violation names the events that prove it, and the jobs involved. The one
    exception is FM_016, whose failure is work that never became a job (a ticket's change
    whose projection was never enqueued): its evidence is the change's event, and there is
    no job to name."""
    violations = fm.run(fm.baseline).violations
    assert violations, "the baseline reported nothing: there is no evidence to check"
    for violation in violations:
        assert violation.inv in BY_ID
        assert violation.evidence.events, violation
        assert violation.evidence.jobs or fm.meta.lever == "ticket_outbox", violation


def test_every_lever_is_the_lever_of_some_failure_mode():
    """No dead guards: a lever no failure mode turns off is a guard nobody proved necessary."""
    used = {fm.meta.lever for fm in FAILURE_MODES}
    assert set(LEVERS) <= used, f"levers no FM proves necessary: {set(LEVERS) - used}"


def test_the_index_lists_every_failure_mode_under_its_header():
    lines = index.INDEX.read_text().splitlines()
    header = index.header()
    assert lines[: len(header)] == header, "docs/failure_mode_index.md is stale: make index"
    assert [line.split("]")[0].removeprefix("| [") for line in lines[len(header) :]] == IDS


def test_each_failure_mode_has_its_make_targets():
    for fm in FAILURE_MODES:
        for target, tests in (
            (f"test-fm{fm.number}", "test_repro_"),
            (f"test-fm{fm.number}-fix", "test_prevent_"),
        ):
            plan = subprocess.run(
                ["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout
            assert f"{fm.folder.name}/" in plan and tests in plan, (target, plan)


def test_a_new_scaffold_cannot_pass_empty(tmp_path):
    """`make new-fm` copies the template into the next number; its tests fail saying what to
    write, and the catalog names every placeholder left to fill."""
    for part in ("runtime", "failure_modes", "docs"):
        subprocess.run(["cp", "-r", REPO / part, tmp_path / part], check=True)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    made = python("-m", "failure_modes.scaffold", "slow_consumer")
    assert made.returncode == 0, made.stderr
    number = f"{max(fm.number for fm in FAILURE_MODES) + 1:03d}"
    folder = tmp_path / "failure_modes" / f"FM_{number}_slow_consumer"
    assert (folder / "tests" / f"test_repro_fm{number}.py").is_file()
    assert f"FM_{number}" in (tmp_path / "docs" / "failure_mode_index.md").read_text()

    tests = python(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        str(folder / "tests"),
    )
    assert tests.returncode == 1, tests.stdout
    assert f"FM_{number} is a scaffold: write the repro" in tests.stdout
    assert f"FM_{number} is a scaffold: write the prevent test" in tests.stdout

    problems = python(
        "-c",
        "from failure_modes import catalog; import sys;"
        f"print('\\n'.join(catalog.bundle_problems(catalog.ROOT / '{folder.name}')))",
    )
    assert "META.lever '' is not a lever" in problems.stdout
    assert "still has TODO( placeholders" in problems.stdout

    again = python("-m", "failure_modes.scaffold", "slow_consumer")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = python("-m", "failure_modes.scaffold", "Not A Name")
    assert bad.returncode == 2 and "snake_case" in bad.stderr


@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_exploring_the_baseline_finds_the_break_within_the_stated_seeds(fm):
    """META.found_within is a claim; here it is measured."""
    jobs, workers = fm.meta.world
    summary = explore(fm.build("baseline"), range(fm.meta.found_within), jobs=jobs, workers=workers)
    assert set(fm.meta.invariants) & set(summary.failing), summary.failing


@pytest.mark.campaign
@pytest.mark.parametrize("fm", FAILURE_MODES, ids=IDS)
def test_exploring_guarded_holds_for_500_more_seeds_and_puts_the_guard_to_work(fm):
    """Every prevent test explores at least seeds 0-499; this gate holds each failure mode, present
    and future, to the next 500, so the two together are 1,000 seeds, none explored twice.
    A campaign: `make gate` runs it (CI does, after `make test`), so `make test` stays
    under a minute on 2 cores as the catalog grows."""
    jobs, workers = fm.meta.world
    summary = explore(fm.build("guarded"), range(500, 1000), jobs=jobs, workers=workers)
    assert summary.failing == {}, summary.failing
    assert not [mark for mark in fm.meta.marks if not summary.marks[mark]], summary.marks
