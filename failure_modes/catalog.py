"""Find the failure-mode folders and load what each declares about itself.

A folder `failure_modes/FM_NNN_slug/` is a failure mode when it holds `spec.md`,
`scenario.py` (with `META`, `run(policies, seed=None)` for the scripted schedule, and
`scenario(policies, jobs, workers)` for the world the explorer searches) and its repro and
prevent tests.
The CLI, the index generator and the catalog test all read the catalog through here.
"""

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import UsageError
from runtime.policies import GUARDED, Policies
from runtime.shrink import Build
from runtime.sim import RunResult, Scenario

ROOT = Path(__file__).resolve().parent
FOLDER = re.compile(r"^FM_(\d{3})_([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class Meta:
    """What a failure mode declares about itself, in its scenario.py."""

    id: str
    title: str
    lever: str
    invariants: tuple[str, ...]
    summary: str
    marks: tuple[str, ...] = ()
    """Coverage marks (runtime.marks) the prevent test's exploration must hit: the guard
    was put to work, so a pass is not vacuous."""
    found_within: int = 0
    """Exploring the baseline from seed 0 finds the first invariant within this many seeds."""
    world: tuple[int, int] = (3, 2)
    """The jobs and workers its world is explored with, unless a person asks otherwise:
    most failures need few; a retry storm needs a crowd."""
    sqlite_only: str = ""
    """Why its world runs on SQLite alone (empty: it runs on PostgreSQL too, and
    tests/test_catalog_postgres.py proves its fix there with the same timeline)."""


@dataclass(frozen=True)
class FailureMode:
    meta: Meta
    folder: Path
    run: Callable[..., RunResult]
    scenario: Callable[..., Scenario]

    @property
    def number(self) -> int:
        return int(self.meta.id.removeprefix("FM_"))

    @property
    def baseline(self) -> Policies:
        """GUARDED with exactly this failure mode's lever off."""
        return GUARDED.without(self.meta.lever)

    def policies(self, name: str) -> Policies:
        if name == "baseline":
            return self.baseline
        if name == "guarded":
            return GUARDED
        raise UsageError(f"unknown policy {name!r}; choose baseline or guarded")

    def build(self, policy: str) -> Build:
        """(jobs, workers) -> this failure mode's explored scenario under `policy`."""
        return functools.partial(self.scenario, self.policies(policy))


def folders() -> list[Path]:
    return sorted(p for p in ROOT.iterdir() if p.is_dir() and FOLDER.match(p.name))


def load(folder: Path) -> FailureMode:
    module = importlib.import_module(f"failure_modes.{folder.name}.scenario")
    return FailureMode(module.META, folder, module.run, module.scenario)


def discover() -> list[FailureMode]:
    return [load(folder) for folder in folders()]


def find(name: str) -> FailureMode:
    """Look a failure mode up by `FM_001`, `fm1`, `1` or its folder name."""
    match = re.fullmatch(r"(?:fm_?)?0*(\d{1,3})(?:_[a-z0-9_]*)?", name.strip().lower())
    if match:
        for folder in folders():
            if int(FOLDER.match(folder.name).group(1)) == int(match.group(1)):
                return load(folder)
    known = ", ".join(f.name[:6] for f in folders()) or "none"
    raise UsageError(f"unknown failure mode {name!r}; known: {known}")


SPEC_SECTIONS = (
    "Trigger",
    "Symptoms",
    "Violated invariants",
    "Detection",
    "Prevention / recovery",
    "Acceptance",
    "References",
)


def bundle_problems(folder: Path) -> list[str]:
    """Everything that keeps `folder` from being a complete failure-mode bundle, in words."""
    from runtime.invariants import BY_ID
    from runtime.marks import MARKS
    from runtime.policies import LEVERS

    name = folder.name
    match = FOLDER.match(name)
    if not match:
        return [f"{name}: folder name must be FM_NNN_snake_case"]
    number = match.group(1)
    problems = []
    for required in (
        "__init__.py",
        "spec.md",
        "scenario.py",
        f"tests/test_repro_fm{number}.py",
        f"tests/test_prevent_fm{number}.py",
    ):
        if not (folder / required).is_file():
            problems.append(f"{name}: missing {required}")
    if problems:
        return problems
    spec = (folder / "spec.md").read_text()
    headings = {line.lstrip("#").strip() for line in spec.splitlines() if line.startswith("## ")}
    problems += [f"{name}/spec.md: no '## {s}' section" for s in SPEC_SECTIONS if s not in headings]
    if "TODO(" in spec:
        problems.append(f"{name}/spec.md: still has TODO( placeholders")
    try:
        meta = load(folder).meta
    except Exception as error:  # noqa: BLE001 - reported, not swallowed: this is a lint
        return [*problems, f"{name}/scenario.py: cannot load META ({error!r})"]
    if meta.id != f"FM_{number}":
        problems.append(f"{name}: META.id is {meta.id!r}, the folder says FM_{number}")
    if meta.lever not in LEVERS:
        problems.append(
            f"{name}: META.lever {meta.lever!r} is not a lever of Policies ({', '.join(LEVERS)})"
        )
    if not meta.invariants:
        problems.append(f"{name}: META.invariants names no invariant")
    for inv in meta.invariants:
        if inv not in BY_ID:
            problems.append(f"{name}: META names {inv}, which docs/01_invariants.md lacks")
        elif inv not in spec:
            problems.append(f"{name}/spec.md: does not mention {inv}, which META names")
    if not meta.marks:
        problems.append(f"{name}: META.marks names no coverage mark for its prevent test")
    problems += [
        f"{name}: META.marks names {mark!r}, which runtime.marks.MARKS lacks"
        for mark in meta.marks
        if mark not in MARKS
    ]
    if meta.found_within < 1:
        problems.append(f"{name}: META.found_within must say within how many seeds")
    for text in (meta.title, meta.summary):
        if "TODO(" in text:
            problems.append(f"{name}: META still has TODO( placeholders")
    return problems
