"""The simulator's speed, beside raw SQLite and a Hypothesis machine: `make bench-sim`.

The seeded explorer is worth having only if it searches far more than a Hypothesis state
machine can in the same time; and how fast it can be at all is bounded by how fast SQLite
commits, since every step is real transactions. So the three are measured in one run, on
one machine, on the standard scenario (FM_001 under GUARDED, 5 jobs, 2 workers, every
fault site, every invariant checked after every step): the ratios hold where the absolute
figures would not. The figures are printed and written into docs/benchmarks.md, under
`## Simulator`, from the measurements alone.
"""

import functools
import os
import platform
import sqlite3
import sys
import textwrap
import time
from dataclasses import dataclass
from unittest import mock

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bench import doc
from failure_modes.FM_001_duplicate_retry import scenario
from failure_modes.machine import machine_for, one_of
from runtime import sim
from runtime.explore import explore
from runtime.policies import GUARDED

JOBS, WORKERS = 5, 2
DEFAULT_JOBS = 3
"""The world `fmlab explore` runs unless told otherwise: 3 jobs, 2 workers."""
STANDARD = functools.partial(scenario.scenario, GUARDED)
"""The standard scenario's world: FM_001 under GUARDED, with every fault site in the mix."""
SEEDS = {1: 3_000, 2: 6_000}
"""Seeds explored per number of processes: several seconds of work each."""
WARM_UP_SEEDS = 100
SQLITE_TRANSACTIONS = 300_000
MACHINE = settings(
    max_examples=100, stateful_step_count=50, derandomize=True, database=None, deadline=None
)
SEEDS_PER_S_GOAL, SEEDS_PER_S_STRETCH = 1_000, 2_000
"""Standard-scenario seeds a second on 2 processes."""
OVER_HYPOTHESIS_GOAL = 20
"""Simulator steps a second, as a multiple of the Hypothesis machine's."""
HEADING = "## Simulator"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds


@dataclass(frozen=True)
class Explored:
    processes: int
    seeds: Rate
    steps: Rate


@dataclass(frozen=True)
class Figures:
    explored: dict[int, Explored]
    """By number of processes."""
    default_world: Explored
    """The default world's, on 2 processes."""
    unchecked: Explored
    """The same seeds as on 1 process, with no invariant checked: the runtime's own steps."""
    sqlite: Rate
    """`BEGIN IMMEDIATE; INSERT one row; COMMIT`s."""
    machine: Rate
    """Rules the Hypothesis machine ran."""
    alone: Rate
    """Rules the same machine ran with nothing behind them (`hypothesis_alone`)."""
    facts: dict[str, str]


def measure_explorer(processes: int, jobs: int = JOBS) -> Explored:
    seeds = range(SEEDS[processes])
    started = time.perf_counter()
    summary = explore(STANDARD, seeds, jobs=jobs, workers=WORKERS, processes=processes)
    seconds = time.perf_counter() - started
    if summary.failing:
        raise SystemExit(f"the standard scenario broke under GUARDED: {summary.failing}")
    return Explored(processes, Rate(len(seeds), seconds), Rate(summary.steps, seconds))


def measure_unchecked(checked: Explored) -> Explored:
    """The 1-process seeds with no invariant to check: the scheduler still reads the rows
    it needs after each step, so the timelines (and the steps) are the same; what is left
    is the runtime's own steps and the simulator's, the most any checking could leave."""
    with mock.patch.object(sim, "INVARIANTS", ()):
        unchecked = measure_explorer(1)
    if unchecked.steps.count != checked.steps.count:
        raise SystemExit(
            f"with no invariant checked the seeds took {unchecked.steps.count} steps, not "
            f"{checked.steps.count}: the timelines differ, so the rates do not compare"
        )
    return unchecked


def measure_sqlite(transactions: int = SQLITE_TRANSACTIONS) -> Rate:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, at REAL NOT NULL, note TEXT)")
    started = time.perf_counter()
    for n in range(transactions):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO rows (at, note) VALUES (?, ?)", (n / 1000, "step"))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return Rate(transactions, seconds)


def hypothesis_alone() -> type[RuleBasedStateMachine]:
    """The Hypothesis machine's four rules with nothing behind them: the same strategies,
    over workers that do nothing. What it runs a second is Hypothesis's own ceiling, how
    little the simulation under it might cost."""
    workers = tuple(f"w{n}" for n in range(1, WORKERS + 1))
    lease_s = STANDARD(JOBS, WORKERS).policies.lease_s

    class Alone(RuleBasedStateMachine):
        rules_run = 0

        def __init__(self) -> None:
            super().__init__()
            self.busy: set[str] = set()

        def counted(self) -> None:
            type(self).rules_run += 1

        @rule(worker=one_of(lambda state: list(workers)))
        def step(self, worker: str) -> None:
            self.counted()
            self.busy.add(worker)

        @precondition(lambda self: self.busy)
        @rule(worker=one_of(lambda state: sorted(state.busy)))
        def crash(self, worker: str) -> None:
            self.counted()
            self.busy.discard(worker)

        @rule(seconds=st.sampled_from((lease_s, lease_s / 2, 1.0)))
        def advance(self, seconds: float) -> None:
            self.counted()

        @precondition(lambda self: len(self.busy) == WORKERS)
        @rule()
        def reap(self) -> None:
            self.counted()
            self.busy.clear()

        @invariant()
        def holds(self) -> None:
            pass

    return Alone


def measure_machine(
    config: settings = MACHINE, machine: type[RuleBasedStateMachine] | None = None
) -> Rate:
    machine = machine or machine_for(STANDARD, jobs=JOBS, workers=WORKERS)
    started = time.perf_counter()
    run_state_machine_as_test(machine, settings=config)
    return Rate(machine.rules_run, time.perf_counter() - started)


def machine_facts() -> dict[str, str]:
    return {
        "CPUs": str(os.cpu_count()),
        "platform": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
    }


def measure() -> Figures:
    """Warm up first (imports, the per-process database image, Hypothesis's caches), so
    that what is timed is the steady state."""
    explore(STANDARD, range(WARM_UP_SEEDS), jobs=JOBS, workers=WORKERS)
    measure_sqlite(10_000)
    measure_machine(settings(MACHINE, max_examples=5))
    explored = {n: measure_explorer(n) for n in sorted(SEEDS)}
    return Figures(
        explored=explored,
        default_world=measure_explorer(2, jobs=DEFAULT_JOBS),
        unchecked=measure_unchecked(explored[1]),
        sqlite=measure_sqlite(),
        machine=measure_machine(),
        alone=measure_machine(machine=hypothesis_alone()),
        facts=machine_facts(),
    )


def number(value: float) -> str:
    return f"{value:,.0f}"


def times(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.1f}x" if value >= 1 else f"{value:.2g}x"


def micros(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def section(f: Figures) -> str:
    """The `## Simulator` section, from the figures alone."""
    one, two = f.explored[1], f.explored[2]
    over_hypothesis = one.steps.per_s / f.machine.per_s
    unchecked_over_hypothesis = f.unchecked.steps.per_s / f.machine.per_s
    over_sqlite = one.steps.per_s / f.sqlite.per_s
    scaling = two.seeds.per_s / one.seeds.per_s
    seeds_goal = (
        f"at least {number(SEEDS_PER_S_GOAL)} (stretch {number(SEEDS_PER_S_STRETCH)}): "
        + verdict(two.seeds.per_s >= SEEDS_PER_S_GOAL)
        + (", stretch met" if two.seeds.per_s >= SEEDS_PER_S_STRETCH else "")
    )
    rows = [
        ("seeds/s, 1 process", number(one.seeds.per_s), ""),
        ("seeds/s, 2 processes", number(two.seeds.per_s), seeds_goal),
        (
            f"seeds/s, 2 processes, the default world ({DEFAULT_JOBS} jobs)",
            number(f.default_world.seeds.per_s),
            "the same goal, for what `fmlab explore` runs by default: "
            + verdict(f.default_world.seeds.per_s >= SEEDS_PER_S_GOAL),
        ),
        ("simulator steps/s, 1 process", number(one.steps.per_s), ""),
        ("simulator steps/s, 2 processes", number(two.steps.per_s), ""),
        (
            "simulator steps/s, 1 process, no invariant checked",
            number(f.unchecked.steps.per_s),
            "the runtime's steps and the simulator's alone, on the same timelines",
        ),
        ("Hypothesis machine steps/s", number(f.machine.per_s), ""),
        (
            "the same machine with nothing behind its rules, steps/s",
            number(f.alone.per_s),
            "Hypothesis's own ceiling",
        ),
        ("raw SQLite transactions/s", number(f.sqlite.per_s), ""),
        (
            "simulator ÷ Hypothesis steps/s (1 process each)",
            times(over_hypothesis),
            f"at least {OVER_HYPOTHESIS_GOAL}x: "
            + verdict(over_hypothesis >= OVER_HYPOTHESIS_GOAL)
            + f"; it needs a step of {micros(1 / (OVER_HYPOTHESIS_GOAL * f.machine.per_s))}"
            f" or less, where one takes {micros(1 / one.steps.per_s)} and a bare"
            f" transaction {micros(1 / f.sqlite.per_s)}",
        ),
        (
            "simulator with no invariant checked ÷ Hypothesis steps/s",
            times(unchecked_over_hypothesis),
            "the most any checking could leave: with nothing checked a step still takes "
            f"{micros(1 / f.unchecked.steps.per_s)}, so no speed of the checks reaches "
            f"{OVER_HYPOTHESIS_GOAL}x while the runtime's own steps cost what they do",
        ),
        (
            "simulator steps/s ÷ raw SQLite transactions/s",
            times(over_sqlite),
            f"a step takes as long as {number(1 / over_sqlite)} bare transactions",
        ),
        ("seeds/s, 2 processes ÷ 1 process", times(scaling), ""),
    ]
    about = (
        "Written by `make bench-sim`. The standard scenario is FM_001's world under "
        f"GUARDED: {JOBS} jobs, {WORKERS} workers, every fault site in the mix, every "
        "invariant checked after every step. The explorer ran "
        f"{number(one.seeds.count)} seeds ({number(one.steps.count)} steps) on 1 process "
        f"and {number(two.seeds.count)} seeds ({number(two.steps.count)} steps) on 2; the "
        f"default world ({DEFAULT_JOBS} jobs), {number(f.default_world.seeds.count)} seeds "
        f"({number(f.default_world.steps.count)} steps) on 2. The "
        "Hypothesis machine (`failure_modes/machine.py`: the same world, its faults chosen "
        f"by its rules) ran {MACHINE.max_examples} programs of up to "
        f"{MACHINE.stateful_step_count} steps, {number(f.machine.count)} steps in all; with "
        f"nothing behind its rules, {number(f.alone.count)}. The 1-process seeds ran "
        "again with no invariant registered, on the same timelines. "
        f"SQLite ran {number(f.sqlite.count)} transactions (`BEGIN IMMEDIATE`, `INSERT` of "
        "one small row, `COMMIT`) on `:memory:` in the same process; a simulator step runs "
        "one or more such transactions, then the invariant checks."
    )
    lines = [
        HEADING,
        "",
        textwrap.fill(about, width=90, break_on_hyphens=False),
        "",
        "| figure | measured | goal |",
        "| --- | ---: | --- |",
        *(f"| {name} | {value} | {goal} |" for name, value, goal in rows),
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in f.facts.items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(
        f"measuring: the explorer on {SEEDS[1]:,} and {SEEDS[2]:,} seeds, "
        f"{SQLITE_TRANSACTIONS:,} SQLite transactions, {MACHINE.max_examples} Hypothesis "
        "programs...",
        file=sys.stderr,
    )
    text = section(measure())
    print(text, end="")
    doc.write(HEADING, text)
    print(f"\nwrote the {HEADING.removeprefix('## ')} section of docs/{doc.DOC.name}")


if __name__ == "__main__":
    main()
