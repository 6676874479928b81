"""The second explorer: Hypothesis programs over the simulator's scripted API.

Under GUARDED no program breaks an invariant, though the programs crash workers, rescue
their leases and have their stale writes refused. Under FM_001's baseline Hypothesis finds
the duplicate effect (INV_001) and shrinks it to a program short enough to read, which
pastes back into a scripted test as it stands.

The settings inherit the profile (tests/conftest.py): `ci` runs the same search every
time, `dev` a fresh one that replays its last failure first. Three choices keep the search
for the break quick and its result short, whatever the seed:
- `max_examples` is a ceiling, not a cost: the search stops at the first failure
  (`report_multiple_bugs=False`; there is only one bug to find);
- programs of at most 16 actions: the break takes 9, and a longer program lets the search
  first waste a whole attempt (lease, expire, reap, crash), which the shrinker cannot
  take back out one action at a time;
- no explain phase (which re-runs the failure under line tracing): it doubles the time,
  and the program already says what happened.
"""

import functools
import re
from collections import Counter

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from failure_modes.FM_001_duplicate_retry import scenario
from failure_modes.machine import machine_for
from runtime.policies import GUARDED

BASELINE = GUARDED.without("commit_boundary")
WITHOUT_EXPLAIN = tuple(phase for phase in Phase if phase is not Phase.explain)
HOLDS = settings(max_examples=150, stateful_step_count=25, phases=WITHOUT_EXPLAIN)
FINDS = settings(
    max_examples=2000,
    stateful_step_count=16,
    report_multiple_bugs=False,
    phases=WITHOUT_EXPLAIN,
)
ACTION = re.compile(r"^state\.(step|crash|advance|reap)\(")
"""A line of a reported program that is one of the machine's rules (not the invariant
check Hypothesis prints after each, nor the constructor or the teardown)."""
GUARDED_MARKS: Counter[str] = Counter()
"""The coverage marks every guarded example hit, added up."""


class GuardedMachine(machine_for(functools.partial(scenario.scenario, GUARDED))):
    def teardown(self) -> None:
        GUARDED_MARKS.update(self.sim.marks)


class BaselineMachine(
    machine_for(functools.partial(scenario.scenario, BASELINE), watch=("INV_001",))
):
    """INV_002 (the crashed attempt's effect was never committed) always breaks a few
    steps before the retry applies the effect again; watching INV_001 alone lets the
    search go on to the duplicate itself."""


def test_no_program_breaks_an_invariant_under_guarded():
    """Not a vacuous pass: the programs crashed workers, the reaper rescued their jobs,
    and writes from leases it had rescued were refused."""
    GUARDED_MARKS.clear()
    run_state_machine_as_test(GuardedMachine, settings=HOLDS)

    for mark in ("fault.crash", "reaper.rescued", "fence.refused"):
        assert GUARDED_MARKS[mark] > 0, f"{mark} never hit: {dict(GUARDED_MARKS)}"


@functools.cache
def baseline_failure() -> AssertionError:
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(BaselineMachine, settings=FINDS)
    return caught.value


def program(failure: AssertionError) -> list[str]:
    """The minimal program Hypothesis reported, as the lines a reader would paste."""
    return [line for line in getattr(failure, "__notes__", []) if line.startswith("state")]


def test_hypothesis_finds_the_duplicate_effect_under_the_baseline():
    failure = baseline_failure()

    assert "violated INV_001" in str(failure), str(failure)
    assert "order-1001 was applied 2 times" in str(failure), str(failure)


def test_the_failing_program_is_short_and_replays_as_printed():
    """At most 12 actions, among them a reap (the retry needs the job back) and steps of a
    second attempt; pasted back in, it breaks INV_001 again."""
    lines = program(baseline_failure())
    actions = [line for line in lines if ACTION.match(line)]

    assert 0 < len(actions) <= 12, "\n".join(lines)
    assert "state.reap()" in actions, "\n".join(lines)
    assert lines[0] == "state = BaselineMachine()", lines[0]
    with pytest.raises(AssertionError, match="violated INV_001"):
        exec("\n".join(lines), {"BaselineMachine": BaselineMachine})
