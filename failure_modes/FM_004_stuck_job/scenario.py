"""FM_004 stuck job: a worker dies mid-job, and nothing ever takes its expired lease back.

The loyalty worker (FM_001's world) leases an order, starts awarding the points and dies.
Its lease says "mine for 30 s", and 30 s pass, but a lease only expires on paper: somebody
has to notice and hand the job back. Without a reaper nobody does. The job stays RUNNING
forever, the customer never gets the points, and no attempt ever fails, so nothing alerts.
The guard is the reaper: it sweeps expired leases, aborts the dead execution and returns
the job to PENDING, where another worker picks it up.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry import scenario as fm001
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation

META = Meta(
    id="FM_004",
    title="Stuck job: an expired lease nobody takes back",
    lever="reaper",
    invariants=("INV_004",),
    summary="A worker dies mid-job; with no reaper its expired lease holds the job RUNNING "
    "forever.",
    marks=("reaper.rescued",),
    found_within=2,
)

WORKERS = ("w1", "w2")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders, `workers` workers, every fault site.
    Without the lever the simulator schedules no reaper at all, as in production."""
    return fm001.scenario(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = fm001.one_order(policies)
    sim.step("w1", until="started")  # w1 leases order 1001 and starts on it
    sim.crash("w1")  # ...and dies: the job is RUNNING on a lease nobody will renew
    sim.advance(2 * policies.lease_s)  # the lease ran out 30 s ago, and still nobody came
    sim.reap()  # the reaper rescues job 1; without the lever this is a no-op
    sim.drain("w2")  # w2 runs whatever is ready: the rescued job, or nothing at all
    return sim.finish()  # the final check: every accepted job must have ended
