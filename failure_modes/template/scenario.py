"""FM_XXX {{name}}: TODO(FM_XXX) one line that names the failure.

TODO(FM_XXX): the story in a few sentences, as in FM_001's scenario.py.
"""

from failure_modes.catalog import Meta
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult

META = Meta(
    id="FM_XXX",
    title="TODO(FM_XXX): a title",
    lever="",  # TODO(FM_XXX): the Policies lever this failure mode turns off
    invariants=(),  # TODO(FM_XXX): the INV_XXX ids the repro reports
    summary="TODO(FM_XXX): one sentence for the index.",
)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one seeded variation of it."""
    raise NotImplementedError("FM_XXX: write the scenario (see FM_001's scenario.py)")
