"""Shrinking: a failing run, reduced to a smallest run that still fails the same way.

Prior art: Zeller's delta debugging and Hypothesis's shrinker, which works on the choice
sequence rather than on the test's own data. A failing run here is a case: how many jobs,
how many workers, and the tape of decisions. The shrinker tries smaller cases (fewer jobs
and workers, chunks of the tape deleted, chunks zeroed, single answers lowered) and keeps
any that still violate the target invariant within fewer steps. Because a tape that runs
out answers 0, the plainest answer, and an out-of-range answer is clamped, every candidate
is a real run; the simulator never has to reject one.

What is left is a short schedule where every non-zero decision matters: setting any of
them to its plainest answer makes the failure go away (or the run longer).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from runtime.sim import RunResult, Scenario, Simulation
from runtime.store import Store

ALIGN_WINDOW = 32
"""How far into the tape a smaller world tries a single deletion."""
CLOSE_UP_MAX = 4
"""How many answers after a zeroed one may be dropped with it."""

Build = Callable[[int, int], Scenario]
"""(jobs, workers) -> the scenario to run: how an explorer rebuilds a case's world."""


@dataclass(frozen=True)
class Case:
    jobs: int
    workers: int
    tape: tuple[int, ...]
    labels: tuple[str, ...] | None = None
    """The question each answer was given to; with them, replay goes by question."""

    def without(self, start: int, stop: int) -> "Case":
        """This case with the answers in [start, stop) deleted."""
        labels = None if self.labels is None else self.labels[:start] + self.labels[stop:]
        return replace(self, tape=self.tape[:start] + self.tape[stop:], labels=labels)

    def answering(self, index: int, value: int) -> "Case":
        return replace(self, tape=(*self.tape[:index], value, *self.tape[index + 1 :]))


@dataclass(frozen=True)
class Shrunk:
    case: Case
    steps: int
    """Steps of the shrunk run up to the violation."""
    steps_before: int
    runs: int
    """Candidate runs tried."""


def replay(
    build: Build,
    case: Case,
    *,
    scheduler: str = "random",
    stop_on: str | None = None,
    store: Store | None = None,
) -> RunResult:
    return Simulation(
        0,
        build(case.jobs, case.workers),
        tape=case.tape,
        labels=case.labels,
        scheduler=scheduler,
        stop_on=stop_on,
        store=store,
    ).run()


def shrink(
    build: Build, case: Case, inv: str, *, scheduler: str = "random", runs_max: int = 1500
) -> Shrunk:
    """Reduce `case`, which violates `inv`, to a smaller case that still does."""
    store = Store.memory()
    tried = 0

    def attempt(candidate: Case) -> tuple[int, Case] | None:
        nonlocal tried
        tried += 1
        result = replay(build, candidate, scheduler=scheduler, stop_on=inv, store=store)
        if inv not in result.violated():
            return None
        # Keep only what the run consumed: the rest of the tape was never asked for.
        return result.steps, Case(
            candidate.jobs, candidate.workers, tuple(result.tape), tuple(result.labels)
        )

    first = attempt(case)
    if first is None:
        raise ValueError(f"the case does not violate {inv}; nothing to shrink")
    best_steps, best = first
    steps_before = best_steps

    def better(candidate: Case) -> bool:
        nonlocal best_steps, best
        if tried >= runs_max:
            return False
        found = attempt(candidate)
        if found is None:
            return False
        steps, consumed = found
        if _key(steps, consumed) < _key(best_steps, best):
            best_steps, best = steps, consumed
            return True
        return False

    improved = True
    while improved and tried < runs_max:
        improved = False
        for size in ("jobs", "workers"):
            improved |= _smaller_world(best, size, better)
        size = max(1, len(best.tape) // 2)
        while size >= 1:
            start = 0
            while start < len(best.tape):
                tape = best.tape
                if better(Case(best.jobs, best.workers, tape[:start] + tape[start + size :])):
                    improved = True
                    continue
                zeroed = (
                    tape[:start] + (0,) * len(tape[start : start + size]) + tape[start + size :]
                )
                if zeroed != tape and better(Case(best.jobs, best.workers, zeroed)):
                    improved = True
                start += size
            size //= 2
        for index in range(len(best.tape)):
            if index < len(best.tape) and best.tape[index] > 0:
                improved |= _lower(best, index, better) or _zero_and_close_up(best, index, better)
    return Shrunk(best, best_steps, steps_before, tried)


def _smaller_world(case: Case, size: str, better: Callable[[Case], bool]) -> bool:
    """One job (or worker) fewer. A job fewer also removes the questions asked about it
    (was its submit delivered twice?), which shifts every later answer by one; so each
    early single deletion is tried along with it."""
    count = getattr(case, size)
    if count <= 1:
        return False
    if better(replace(case, **{size: count - 1})):
        return True
    for index in range(min(len(case.tape), ALIGN_WINDOW)):
        if better(replace(case.without(index, index + 1), **{size: count - 1})):
            return True
    return False


def _zero_and_close_up(case: Case, index: int, better: Callable[[Case], bool]) -> bool:
    """Answer 0 at `index` and drop the next few answers. Switching a fault site off, say,
    removes its later questions from the run; the answers meant for them must go too, or
    every answer after them lands on the wrong question."""
    for dropped in range(1, CLOSE_UP_MAX + 1):
        if index + dropped >= len(case.tape):
            break
        if better(case.answering(index, 0).without(index + 1, index + 1 + dropped)):
            return True
    return False


def _lower(case: Case, index: int, better: Callable[[Case], bool]) -> bool:
    """Try smaller answers at one position: 0 first, then halving toward it."""
    value = case.tape[index]
    for lower in sorted({0, value // 2, value - 1}):
        if lower < value and better(case.answering(index, lower)):
            return True
    return False


def _key(steps: int, case: Case) -> tuple[int, int, int, int, tuple[int, ...]]:
    """Smaller is simpler: fewer steps to the violation, then a shorter tape, fewer jobs and
    workers, then plainer answers."""
    return (steps, len(case.tape), case.jobs, case.workers, case.tape)
