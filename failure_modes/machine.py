"""The lab's second explorer: Hypothesis writes programs for the simulator's scripted API.

Prior art: Hypothesis's rule-based state machines. The seeded explorer (runtime.explore)
is the fast one, thousands of whole runs a second, but it can only say what a tape says:
faults fire where the mix has fault sites, and the clock moves by step times, pauses and
jumps. This machine searches programs instead: any worker steps, any busy one crashes
between any two steps, the clock moves by a second, half a lease or a whole one, and the
reaper sweeps once a lease has run out. When an invariant breaks, Hypothesis shrinks the
failure to a minimal *program* of named actions and prints it (`state.step(worker='w1')`,
`state.crash(worker='w1')`, ...), which a reader can paste into a scripted test as it
stands. Each explorer reaches what the other's search space leaves out: only the seeded
one pauses workers into zombies, loses acks, fails transactions and steps the clock back;
only this one chooses every move of the clock and of the reaper instead of leaving them
to a scheduler.

The machine decides every fault itself, so the scenario's fault mix is switched off.
"""

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from runtime.faults import NO_MIX
from runtime.shrink import Build
from runtime.sim import Simulation
from runtime.store import Store
from runtime.worker import STEPS

MID_ATTEMPT = frozenset(STEPS) - {"acked"}
"""After these steps a worker still holds its attempt; after any other it has let go."""


def one_of(choices: Callable[[Any], list[str]]) -> st.SearchStrategy[str]:
    """A worker from those the machine, as it stands when the rule runs, offers."""
    return st.runner().flatmap(lambda state: st.sampled_from(choices(state)))


def machine_for(
    build: Build, jobs: int = 1, workers: int = 2, *, watch: Collection[str] | None = None
) -> type[RuleBasedStateMachine]:
    """A state machine over one scripted `Simulation(0, build(jobs, workers))`.

    `watch`: the INV ids whose violation fails the machine (default: every one). Narrowing
    it lets the search go past an invariant that always breaks on the way to another.
    The class counts the rules it runs, over all its examples, in `rules_run`: what a
    benchmark divides by the time taken.
    """
    scenario = dataclasses.replace(build(jobs, workers), mix=NO_MIX)
    lease_s = scenario.policies.lease_s
    names = scenario.workers
    watched = None if watch is None else frozenset(watch)
    store = Store.memory()

    class SimulationMachine(RuleBasedStateMachine):
        rules_run = 0

        def __init__(self) -> None:
            """Each machine wipes and reuses the class's one in-memory store, as the
            explorer does: a fresh one per example would cost a quarter of the search.
            So one machine of a class is alive at a time, as Hypothesis runs them."""
            super().__init__()
            self.sim = Simulation(0, scenario, store=store)
            self.busy: set[str] = set()
            """The workers mid-attempt: those a crash would interrupt."""

        def able(self) -> list[str]:
            """The workers a step would move: those mid-attempt, or all when a job is
            ready. An idle worker with nothing ready would take a step that does nothing."""
            if self.sim.queue.has_ready():
                return list(names)
            return [name for name in names if name in self.busy]

        def counted(self) -> None:
            type(self).rules_run += 1

        @precondition(lambda self: self.able())
        @rule(worker=one_of(lambda state: state.able()))
        def step(self, worker: str) -> None:
            self.counted()
            if self.sim.step(worker) in MID_ATTEMPT:
                self.busy.add(worker)
            else:
                self.busy.discard(worker)

        @precondition(lambda self: self.busy)
        @rule(worker=one_of(lambda state: sorted(state.busy)))
        def crash(self, worker: str) -> None:
            """Only a worker mid-attempt has something to lose."""
            self.counted()
            self.sim.crash(worker)
            self.busy.discard(worker)

        @rule(seconds=st.sampled_from((lease_s, lease_s / 2, 1.0)))
        def advance(self, seconds: float) -> None:
            """A whole lease, to let one run out in one move (listed first, so a shrunk
            program says so); half of one, to land between two deadlines; a second, to
            pass a retry's backoff."""
            self.counted()
            self.sim.advance(seconds)

        @precondition(lambda self: self.sim.queue.has_expired_lease())
        @rule()
        def reap(self) -> None:
            """Only when a lease has run out: a sweep with nothing to rescue only logs
            that it swept."""
            self.counted()
            self.sim.reap()

        @invariant()
        def every_invariant_holds(self) -> None:
            """As the simulator's own monitor recorded it, after every step: the per-step
            check is what is tested here. (A crash or a sweep is not a step; the check
            after the next step sees what it did.)"""
            found = [v for v in self.sim.violations if watched is None or v.inv in watched]
            invs = sorted({v.inv for v in found})
            assert not found, f"violated {', '.join(invs)}:\n" + "\n".join(map(str, found))

    return SimulationMachine
