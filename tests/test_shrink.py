"""The shrinker: a failing run in, a smaller run that fails the same way out.

It must never hand back a case that does not fail, it must be deterministic (the same
failure always shrinks to the same schedule), and what it keeps must be minimal in the
sense it promises: every answer left that is not 0 is needed.
"""

import functools

import pytest

from failure_modes.FM_001_duplicate_retry import scenario
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.shrink import Case, replay, shrink
from runtime.sim import Simulation

BUILD = functools.partial(scenario.scenario, GUARDED.without("commit_boundary"))


@pytest.fixture(scope="module")
def failures():
    summary = explore(BUILD, range(200), jobs=3, workers=2)
    return summary.failing["INV_001"][:6]


def failing_case(seed: int) -> Case:
    run = Simulation(seed, BUILD(3, 2)).run()
    assert "INV_001" in run.violated()
    return Case(3, 2, tuple(run.tape), tuple(run.labels))


def test_each_failure_shrinks_to_a_short_case_that_still_fails(failures):
    for seed in failures:
        shrunk = shrink(BUILD, failing_case(seed), "INV_001")
        again = replay(BUILD, shrunk.case, stop_on="INV_001")
        assert "INV_001" in again.violated()
        assert again.steps == shrunk.steps <= min(10, shrunk.steps_before), seed


def test_every_answer_left_is_needed(failures):
    """Set any non-zero answer of the shrunk tape to 0: the failure goes, or takes longer."""
    shrunk = shrink(BUILD, failing_case(failures[0]), "INV_001")
    tape = shrunk.case.tape
    for index, value in enumerate(tape):
        if value:
            plainer = Case(
                shrunk.case.jobs, shrunk.case.workers, (*tape[:index], 0, *tape[index + 1 :])
            )
            result = replay(BUILD, plainer, stop_on="INV_001")
            assert "INV_001" not in result.violated() or result.steps >= shrunk.steps, index


def test_shrinking_is_deterministic(failures):
    case = failing_case(failures[-1])
    assert shrink(BUILD, case, "INV_001") == shrink(BUILD, case, "INV_001")


def test_a_case_that_does_not_fail_is_refused():
    with pytest.raises(ValueError, match="does not violate INV_001"):
        shrink(BUILD, Case(1, 2, ()), "INV_001")
