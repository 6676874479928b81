"""What an exploration found, in words, and tape files that replay a run anywhere.

Pure functions over a Summary, a shrunk case and a replayed run, so the parts of a report
that do not measure time are the same bytes on every machine.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.choices import Choice
from runtime.errors import UsageError
from runtime.explore import Summary
from runtime.invariants import BY_ID
from runtime.shrink import Case, Shrunk

TAPE_FORMAT = 1


@dataclass(frozen=True)
class TapeFile:
    """Everything `fmlab replay --tape` needs to rebuild a run."""

    fm: str
    policy: str
    scheduler: str
    case: Case
    seed: int | None = None
    inv: str | None = None


def summary_lines(summary: Summary) -> list[str]:
    runs = len(summary.seeds)
    seeds = summary.seeds
    per_second = runs / summary.seconds if summary.seconds > 0 else 0.0
    steps_per_second = summary.steps / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        f"seeds {seeds.start}..{seeds.stop - 1}: {runs} runs, {summary.steps} steps "
        f"({summary.steps / max(1, runs):.1f} per run) in {summary.seconds:.1f} s: "
        f"{per_second:.0f} seeds/s, {steps_per_second:.0f} steps/s",
    ]
    if not summary.failing:
        lines.append("violations: none")
    for n, (inv, failing) in enumerate(summary.failing.items()):
        lines.append(
            f"{'violations: ' if n == 0 else ' ' * 12}{inv} in {len(failing)} seeds "
            f"({summary.density(inv):.1f} per 1,000), first seed {failing[0]}"
        )
    marks = ", ".join(f"{name} {count}" for name, count in sorted(summary.marks.items()))
    lines.append(f"marks: {marks or 'none hit'}")
    return lines


def decision_lines(decisions: list[Choice]) -> list[str]:
    """The decisions that matter: every answer that is not the plainest one."""
    lines = []
    for choice in decisions:
        if choice.value:
            lines.append(f"  #{choice.index} {describe(choice)}")
    return lines or ["  none: the plainest schedule fails"]


def describe(choice: Choice) -> str:
    question, _, options = choice.label.partition(": ")
    if options:
        names = options.split(" | ")
        return f"{question}: {names[min(choice.value, len(names) - 1)]}"
    if choice.label.startswith("switch on "):
        return f"{choice.label}: {'yes' if choice.value else 'no'}"
    return f"{choice.label}: {choice.value}"


def shrunk_lines(seed: int, inv: str, shrunk: Shrunk) -> list[str]:
    return [
        f"shrunk seed {seed} ({inv}): {shrunk.steps_before} steps -> {shrunk.steps} steps, "
        f"{world(shrunk.case)} ({shrunk.runs} candidate runs)",
    ]


def world(case: Case) -> str:
    """ "1 job, 2 workers": the size of a case, in words."""
    jobs = f"{case.jobs} job{'s' * (case.jobs != 1)}"
    return f"{jobs}, {case.workers} worker{'s' * (case.workers != 1)}"


def write_tape(path: Path, tape: TapeFile, decisions: list[Choice]) -> None:
    if path.exists():
        raise UsageError(f"{path}: already exists; give a new file for the tape")
    document = {
        "fmlab_tape": TAPE_FORMAT,
        "fm": tape.fm,
        "policy": tape.policy,
        "scheduler": tape.scheduler,
        "jobs": tape.case.jobs,
        "workers": tape.case.workers,
        "seed": tape.seed,
        "inv": tape.inv,
        "tape": list(tape.case.tape),
        "decisions": [[c.index, c.label, c.value] for c in decisions],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


def read_tape(path: Path) -> TapeFile:
    """A tape file, or UsageError saying what is wrong with it."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such tape file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a tape file ({error})") from None
    if not isinstance(document, dict) or document.get("fmlab_tape") != TAPE_FORMAT:
        raise UsageError(f"{path}: not an fmlab tape (format {TAPE_FORMAT})")
    fm = _field(path, document, "fm", str)
    policy = _field(path, document, "policy", str)
    scheduler = _field(path, document, "scheduler", str)
    jobs = _field(path, document, "jobs", int)
    workers = _field(path, document, "workers", int)
    tape = _field(path, document, "tape", list)
    if jobs < 1 or workers < 1:
        raise UsageError(f"{path}: jobs and workers must be at least 1")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in tape):
        raise UsageError(f"{path}: the tape must be a list of whole numbers >= 0")
    labels = _labels(path, document.get("decisions"), len(tape))
    seed = document.get("seed")
    inv = document.get("inv")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise UsageError(f"{path}: field 'seed' must be a whole number >= 0 or null")
    if inv is not None and inv not in BY_ID:
        raise UsageError(f"{path}: field 'inv' must name an invariant or be null, got {inv!r}")
    return TapeFile(fm, policy, scheduler, Case(jobs, workers, tuple(tape), labels), seed, inv)


def _labels(path: Path, decisions: Any, length: int) -> tuple[str, ...] | None:
    """The questions of a tape's answers, from its `decisions` (absent: replay by position)."""
    if decisions is None:
        return None
    if not isinstance(decisions, list) or len(decisions) != length:
        raise UsageError(f"{path}: 'decisions' must list one [index, question, answer] per answer")
    labels = []
    for decision in decisions:
        if not (isinstance(decision, list) and len(decision) == 3 and isinstance(decision[1], str)):
            raise UsageError(f"{path}: each decision must be [index, question, answer]")
        labels.append(decision[1])
    return tuple(labels)


def _field(path: Path, document: dict[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UsageError(f"{path}: field {name!r} must be a {kind.__name__}")
    return value
