"""The explorer: many seeds of one scenario, on one or more processes, and what they found.

Each seed is one simulated run (runtime.sim) with its own schedule and fault mix. The
explorer counts, per invariant, the seeds that violated it, keeps the first failing seed
of each, adds up the coverage marks, and hands the first failure to the shrinker. Seeds
are split among processes in fixed chunks and merged in seed order, so a summary is the
same whatever the number of processes; only its timings differ.

Determinism is checked, not assumed: `determinism` runs seeds twice and names the first
step whose state hash differs.
"""

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from runtime.clock import SystemClock
from runtime.shrink import Build, Case
from runtime.sim import Simulation, new_run_store

CHUNK = 250
"""Seeds per unit of work handed to a process."""


@dataclass
class SeedOutcome:
    """A run that violated an invariant: enough to report it and to shrink it."""

    seed: int
    steps: int
    violated: list[str]
    tape: list[int]
    labels: list[str]

    def case(self, jobs: int, workers: int) -> Case:
        """This run as a case for the shrinker."""
        return Case(jobs, workers, tuple(self.tape), tuple(self.labels))


@dataclass
class Chunk:
    """What a summary needs of some seeds: the violating runs, and only the totals of the
    rest (a process hands back this much, not one record per seed)."""

    steps: int = 0
    marks: Counter[str] = field(default_factory=Counter)
    failing: list[SeedOutcome] = field(default_factory=list)


@dataclass
class Summary:
    seeds: range
    steps: int = 0
    seconds: float = 0.0
    failing: dict[str, list[int]] = field(default_factory=dict)
    """Per invariant, the seeds that violated it, in order."""
    marks: Counter[str] = field(default_factory=Counter)
    first_failure: SeedOutcome | None = None

    @property
    def failing_seeds(self) -> list[int]:
        return sorted({seed for seeds in self.failing.values() for seed in seeds})

    def density(self, inv: str | None = None) -> float:
        """Violating seeds per 1,000 seeds (of `inv`, or of any invariant)."""
        found = self.failing.get(inv, []) if inv else self.failing_seeds
        return 1000 * len(found) / max(1, len(self.seeds))


def run_seeds(
    build: Build,
    jobs: int,
    workers: int,
    seeds: Sequence[int],
    scheduler: str,
    stop_on: Collection[str] | None = None,
) -> Chunk:
    """Run each seed; keep only what a summary needs (the store is reused, not kept)."""
    scenario = build(jobs, workers)
    store = new_run_store()
    chunk = Chunk()
    for seed in seeds:
        result = Simulation(seed, scenario, scheduler=scheduler, store=store, stop_on=stop_on).run()
        chunk.steps += result.steps
        chunk.marks.update(result.marks)
        if result.violations:
            chunk.failing.append(
                SeedOutcome(
                    seed, result.steps, result.violated(), list(result.tape), list(result.labels)
                )
            )
    return chunk


def explore(
    build: Build,
    seeds: range,
    *,
    jobs: int,
    workers: int,
    scheduler: str = "random",
    processes: int = 1,
    progress: Callable[[int, int], None] | None = None,
    stop_on: Collection[str] | None = None,
) -> Summary:
    """Run every seed in `seeds`; `progress(done, total)` is called as chunks finish.

    `stop_on`: end each run at its first violation of one of these INVs. Which seeds
    violate one of them is the same either way; runs that never go quiet end sooner."""
    summary = Summary(seeds)
    chunks = [seeds[i : i + CHUNK] for i in range(0, len(seeds), CHUNK)]
    wall = SystemClock()  # the explorer's own speed, not the simulated time
    started = wall.now()
    done = 0
    results: dict[int, Chunk] = {}
    if processes <= 1:
        for index, chunk in enumerate(chunks):
            results[index] = run_seeds(build, jobs, workers, chunk, scheduler, stop_on)
            done += len(chunk)
            if progress:
                progress(done, len(seeds))
    else:
        with ProcessPoolExecutor(processes) as pool:
            futures = {
                pool.submit(run_seeds, build, jobs, workers, chunk, scheduler, stop_on): index
                for index, chunk in enumerate(chunks)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += len(chunks[futures[future]])
                if progress:
                    progress(done, len(seeds))
    summary.seconds = wall.now() - started
    for index in range(len(chunks)):
        result = results[index]
        summary.steps += result.steps
        summary.marks.update(result.marks)
        for outcome in result.failing:
            for inv in outcome.violated:
                summary.failing.setdefault(inv, []).append(outcome.seed)
            if summary.first_failure is None:
                summary.first_failure = outcome
    summary.failing = dict(sorted(summary.failing.items()))
    return summary


@dataclass(frozen=True)
class Mismatch:
    seed: int
    step: int
    """The first step (counting from 1) whose state hash differed between the two runs."""


def determinism(
    build: Build, seeds: Sequence[int], *, jobs: int, workers: int, scheduler: str = "random"
) -> list[Mismatch]:
    """Run each seed twice and compare the state after every step; [] when all agree."""
    scenario = build(jobs, workers)
    mismatches = []
    for seed in seeds:
        first = Simulation(seed, scenario, scheduler=scheduler, trace=True).run()
        second = Simulation(seed, scenario, scheduler=scheduler, trace=True).run()
        a, b = first.step_hashes, second.step_hashes
        if a != b or first.tape != second.tape:
            step = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)),
            )
            mismatches.append(Mismatch(seed, step + 1))
    return mismatches
