"""FM_003 zombie worker: a worker paused past its lease wakes up and writes as if it still
held the job.

The loyalty worker (FM_001's world) leases an order, computes the points and freezes: a
long GC pause, a stopped VM, a laptop lid. Its lease runs out, the reaper hands the job
to another worker, and then the first one wakes up, unaware that any time has passed,
and commits. Without fencing the store takes its word for it: the stale attempt marks
the job SUCCEEDED while the new holder is still running it. The guard is fencing: every
lease carries a token that grows with each lease of the job, the reaper revokes the
expired attempt, and the store checks every worker write against the job's newest token
and the lease's expiry, refusing the stale one (`lease.lost`).
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry import scenario as fm001
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation

META = Meta(
    id="FM_003",
    title="Zombie worker: a paused worker writes after losing its lease",
    lever="fencing",
    invariants=("INV_007",),
    summary="A worker paused past its lease wakes after the job was handed on and commits "
    "its stale attempt; with no fencing the store accepts it.",
    marks=("fence.refused",),
    found_within=2,
)

WORKERS = ("w1", "w2")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders, `workers` workers, every fault site.
    Pauses past the lease (`pause@...`) and clock jumps make the zombies."""
    return fm001.scenario(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = fm001.one_order(policies)
    sim.step("w1", until="effect_applied")  # w1 has the points in hand, ready to commit...
    sim.advance(policies.lease_s + 1)  # ...and freezes (a GC pause) for longer than its lease
    sim.reap()  # the reaper hands job 1 back to the queue
    sim.step("w2", until="effect_applied")  # w2 leases it (token 2) and computes the points
    sim.drain("w1")  # w1 wakes up, unaware, and commits and acks its stale attempt
    sim.drain("w2")  # w2 finishes the attempt it holds
    return sim.finish()
