"""Find the failure-mode folders and load what each declares about itself.

A folder `failure_modes/FM_NNN_slug/` is a failure mode when it holds `spec.md`,
`scenario.py` (with `META` and `run(policies, seed=None)`) and its repro and prevent tests.
The CLI, the index generator and the catalog test all read the catalog through here.
"""

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import UsageError
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult

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


@dataclass(frozen=True)
class FailureMode:
    meta: Meta
    folder: Path
    run: Callable[..., RunResult]

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


def folders() -> list[Path]:
    return sorted(p for p in ROOT.iterdir() if p.is_dir() and FOLDER.match(p.name))


def load(folder: Path) -> FailureMode:
    module = importlib.import_module(f"failure_modes.{folder.name}.scenario")
    return FailureMode(module.META, folder, module.run)


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
