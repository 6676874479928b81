"""FM_015 cause of death overwritten: a dead job's record says "retries exhausted", not why.

FM_005's world: one refund, sent by an old client with the order under `order_id`, fails
with KeyError on every attempt, and the retry budget sends it to the dead letters after
three. That part works. What breaks is the record of it: at DEAD the job's `last_error`
and its `job.dead` event are overwritten with a summary ("retries exhausted after 3
attempts"), so the dead-letter queue a person reads names no cause, and whoever
redrives the job has to dig through the attempts to learn why it died. The guard keeps
the cause: the error that killed the job is the one on the job and on its `job.dead`.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_005_poison_job import scenario as fm005
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario

META = Meta(
    id="FM_015",
    title="Cause of death overwritten: a dead job's record names no cause",
    lever="cause_of_death",
    invariants=("INV_005",),
    summary="A job that spends its budget goes DEAD with a summary, 'retries exhausted', in "
    "place of the error that killed it.",
    marks=("job.dead",),
    found_within=1,
)

POISON = fm005.POISON
HANDLERS = fm005.HANDLERS


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """FM_005's world: the poison refund first, then orders, every fault site."""
    return fm005.scenario(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """FM_005's scripted schedule: the refund fails three times and goes DEAD while w2
    awards an order's points; or with a seed one explored run of `scenario(policies)`."""
    return fm005.run(policies, seed)
