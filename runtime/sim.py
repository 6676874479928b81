"""A deterministic harness: real runtime, real SQLite, simulated time and scheduling.

Prior art: FoundationDB's simulator and TigerBeetle's VOPR: one seed owns every choice
(which worker steps next, how long a step takes, backoff jitter), so a seed *is* a
timeline, and the same seed prints the same bytes. Nothing is mocked: workers are the
runtime's step generators over an in-memory SQLite store.

Two ways to drive it:
- scripted: `sim.step("w1", until="effect_applied")`, `sim.crash("w1")`, `sim.advance(31)`,
  `sim.reap()`, `sim.drain()`: one exact schedule, for a repro a reader can follow;
- explored: `sim.run()`: seeded random interleaving until every job is finished, with the
  invariants checked after every step and the fault plan firing as workers reach steps.
"""

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime import invariants
from runtime.clock import SimClock
from runtime.errors import StepBudgetExceeded
from runtime.faults import NO_FAULTS, AdvanceClock, CrashAfter, FaultInjector, FaultPlan, PauseAfter
from runtime.invariants import Violation
from runtime.policies import GUARDED, Policies
from runtime.queue import Queue
from runtime.store import Event, Store
from runtime.worker import Handler, Worker

STEP_MS_MAX = 1000
"""A worker step takes a whole number of milliseconds in [0, STEP_MS_MAX] of simulated time."""


@dataclass(frozen=True)
class JobSpec:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    jobs: tuple[JobSpec, ...]
    handlers: Mapping[str, Handler]
    workers: tuple[str, ...] = ("w1", "w2")
    policies: Policies = GUARDED
    faults: FaultPlan = NO_FAULTS


@dataclass
class RunResult:
    seed: int
    policies: Policies
    store: Store
    steps: int
    violations: list[Violation]

    @property
    def events(self) -> list[Event]:
        return self.store.events()

    def violated(self) -> list[str]:
        """The ids of the invariants violated, each once, in order."""
        return sorted({v.inv for v in self.violations})


class Simulation:
    def __init__(self, seed: int, scenario: Scenario) -> None:
        self.seed = seed
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.store = Store.memory()
        self.queue = Queue(self.store, self.clock, self.rng, scenario.policies)
        self.workers = {
            name: Worker(name, self.queue, scenario.handlers) for name in scenario.workers
        }
        self.injector = FaultInjector(scenario.faults)
        self.steps = 0
        self._running: dict[str, Iterator[str]] = {}
        self._paused_until: dict[str, float] = {}
        self._last_step: dict[str, str] = {}
        self._violations: dict[str, Violation] = {}
        self.job_ids = [self.queue.submit(job.kind, dict(job.payload)) for job in scenario.jobs]

    # --- scripted driving --------------------------------------------------------------

    def step(self, worker: str, *, until: str | None = None) -> str | None:
        """Run `worker` one step (or up to and including step `until`); returns the last step.

        Returns None when the worker had nothing to do or its attempt is over.
        """
        while True:
            name = self._step(worker)
            if until is None or name is None or name == until:
                return name

    def crash(self, worker: str) -> None:
        """Kill `worker`: whatever it held in memory is gone; the store keeps what it wrote."""
        attempt = self._running.pop(worker, None)
        if attempt is not None:
            attempt.close()
        self.queue.note("fault.crash", worker=worker, after=self._last_step.get(worker))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def reap(self) -> list[int]:
        return self.queue.reap()

    def drain(self, worker: str, *, steps_max: int = 1000) -> None:
        """Let `worker` alone run attempts until nothing is ready for it."""
        for _ in range(steps_max):
            if worker not in self._running and not self.queue.has_ready():
                return
            self._step(worker)
        raise StepBudgetExceeded(f"{worker} still busy after {steps_max} steps")

    # --- explored driving --------------------------------------------------------------

    def run(self, *, steps_max: int = 10_000) -> "RunResult":
        """Interleave the workers and the reaper at random (seeded) until nothing is left."""
        while True:
            actors = self._actors()
            if not actors:
                if not self._jump_to_next_deadline():
                    break
                continue
            if self.steps >= steps_max:
                raise StepBudgetExceeded(
                    f"seed {self.seed}: not quiet after {steps_max} steps at t={self.clock.now()}"
                )
            actor = self.rng.choice(actors)
            if actor == "reaper":
                self.queue.reap()
                self.steps += 1
            else:
                self._step(actor)
            self.clock.advance(self.rng.randint(0, STEP_MS_MAX) / 1000)
        return self.finish()

    def finish(self) -> RunResult:
        """End the run: the final (liveness) check joins what every step found."""
        self._check(final=True)
        return RunResult(
            self.seed,
            self.scenario.policies,
            self.store,
            self.steps,
            sorted(self._violations.values(), key=lambda v: v.inv),
        )

    # --- internals ---------------------------------------------------------------------

    def _step(self, worker: str) -> str | None:
        attempt = self._running.get(worker)
        if attempt is None:
            attempt = self._running[worker] = self.workers[worker].attempt()
        step = next(attempt, None)
        self.steps += 1
        if step is None:
            del self._running[worker]
        else:
            self._last_step[worker] = step
            self._inject(worker, step)
        self._check(final=False)
        return step

    def _inject(self, worker: str, step: str) -> None:
        for fault in self.injector.after(worker, step):
            match fault:
                case CrashAfter():
                    self.crash(worker)
                case PauseAfter(seconds=seconds):
                    self._paused_until[worker] = self.clock.now() + seconds
                    self.queue.note("fault.pause", worker=worker, seconds=seconds)
                case AdvanceClock(seconds=seconds):
                    self.clock.advance(seconds)
                    self.queue.note("fault.clock_advanced", worker=worker, seconds=seconds)

    def _actors(self) -> Sequence[str]:
        now = self.clock.now()
        ready = self.queue.has_ready()
        actors = [
            name
            for name in self.workers
            if self._paused_until.get(name, 0.0) <= now and (name in self._running or ready)
        ]
        if self.queue.has_expired_lease():
            actors.append("reaper")
        return actors

    def _jump_to_next_deadline(self) -> bool:
        """When nobody can act, jump the clock to the next moment somebody can."""
        now = self.clock.now()
        candidates = [t for t in self._paused_until.values() if t > now]
        deadline = self.queue.next_deadline()
        if deadline is not None:
            candidates.append(deadline)
        if not candidates:
            return False
        self.clock.set(min(candidates))
        return True

    def _check(self, *, final: bool) -> None:
        for violation in invariants.check(self.store, final=final):
            self._violations.setdefault(str(violation), violation)
