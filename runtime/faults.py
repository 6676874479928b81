"""Fault plans: what breaks, where and when. Policies say what guards; faults say what goes wrong.

A fault fires after a named worker step (see runtime.worker.STEPS): the `occurrence`-th
time the step is reached by the named worker (any worker when `worker` is None). Plans are
frozen values, so a scenario states its faults up front; a FaultInjector counts arrivals
during one run.
"""

from collections import Counter
from dataclasses import dataclass

from runtime.worker import ENDINGS, STEPS


@dataclass(frozen=True)
class CrashAfter:
    """The worker process dies right after `step`: its in-memory state is gone."""

    step: str
    worker: str | None = None
    occurrence: int = 1


@dataclass(frozen=True)
class PauseAfter:
    """The worker stops for `seconds` after `step` (a GC pause, a stopped VM), then resumes."""

    step: str
    seconds: float
    worker: str | None = None
    occurrence: int = 1


@dataclass(frozen=True)
class AdvanceClock:
    """Time jumps forward by `seconds` right after `step`."""

    step: str
    seconds: float
    worker: str | None = None
    occurrence: int = 1


Fault = CrashAfter | PauseAfter | AdvanceClock


@dataclass(frozen=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        for fault in self.faults:
            if fault.step not in STEPS + ENDINGS:
                raise ValueError(
                    f"unknown step {fault.step!r}; steps are {', '.join(STEPS + ENDINGS)}"
                )
            if fault.occurrence < 1:
                raise ValueError(f"occurrence counts from 1, got {fault.occurrence}")
            if isinstance(fault, PauseAfter | AdvanceClock) and fault.seconds < 0:
                raise ValueError(f"{type(fault).__name__} needs seconds >= 0")


NO_FAULTS = FaultPlan()


class FaultInjector:
    """Says which faults of a plan fire as workers reach their steps."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._arrivals: Counter[int] = Counter()

    def after(self, worker: str, step: str) -> list[Fault]:
        fired = []
        for index, fault in enumerate(self.plan.faults):
            if fault.step != step or fault.worker not in (None, worker):
                continue
            self._arrivals[index] += 1
            if self._arrivals[index] == fault.occurrence:
                fired.append(fault)
        return fired
