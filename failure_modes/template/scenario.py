"""FM_XXX {{name}}: TODO(FM_XXX) one line that names the failure.

TODO(FM_XXX): the story in a few sentences, as in FM_001's scenario.py.
"""

from failure_modes.catalog import Meta
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario

META = Meta(
    id="FM_XXX",
    title="TODO(FM_XXX): a title",
    lever="",  # TODO(FM_XXX): the Policies lever this failure mode turns off
    invariants=(),  # TODO(FM_XXX): the INV_XXX ids the repro reports
    summary="TODO(FM_XXX): one sentence for the index.",
    marks=(),  # TODO(FM_XXX): the runtime.marks the prevent exploration must hit
    found_within=0,  # TODO(FM_XXX): exploring the baseline finds the break within N seeds
)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one seeded variation of it."""
    raise NotImplementedError("FM_XXX: write the scenario (see FM_001's scenario.py)")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches."""
    raise NotImplementedError("FM_XXX: write the explored scenario (see FM_001's scenario.py)")
