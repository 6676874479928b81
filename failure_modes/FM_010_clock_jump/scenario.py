"""FM_010 clock jump: a worker's wall clock steps back, and its lease outlives itself.

The loyalty worker (FM_001's world) leases an order for 30 s. While it works, NTP steps
its wall clock back 30 s: the clock had drifted fast and is corrected in one step. The
work is slow, 35 s; by the store's clock the lease ran out at 30.000, but the worker's
clock says only 5 s have passed. Without the lever the lease deadline is checked against
the clock of the worker that writes, so the store lets its commit through, 5 s after the
lease it relies on expired. The guard is one time authority: every lease deadline is set
and checked on the store's clock (in a database, its own `now()`), never on a worker's.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry import scenario as fm001
from runtime.faults import SITES, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation

META = Meta(
    id="FM_010",
    title="Clock jump: a lease measured on a wall clock that steps",
    lever="store_clock",
    invariants=("INV_007",),
    summary="A worker's wall clock steps back while it holds a lease; measured on that "
    "clock, the lease outlives itself and the store accepts writes after it expired.",
    marks=("clock.overruled",),
    found_within=18,
)

MIX = FaultMix(sites=(*SITES, "wall_clock_step"))
"""Every fault site, and a step of one worker's own wall clock besides."""
NTP_STEP_S = -30.0
"""The correction: the worker's clock had drifted 30 s fast, and NTP steps it back."""
SLOW_WORK_S = 35.0
"""How long the worker spends on the order after the step: longer than its lease."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = MIX
) -> Scenario:
    """The world the explorer searches: FM_001's `jobs` orders and `workers` workers, with
    every fault site and steps of each worker's own wall clock."""
    return fm001.scenario(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = fm001.one_order(policies)
    sim.step("w1", until="started")  # w1 leases order 1001 until 30.000 and starts
    sim.step_wall_clock("w1", NTP_STEP_S)  # NTP steps w1's clock back 30 s
    sim.advance(SLOW_WORK_S)  # the points take 35 s to work out: past the lease
    sim.drain("w1")  # w1 commits at 35.000; its own clock says 5.000
    sim.reap()  # the reaper's next sweep
    sim.drain("w2")  # w2 takes whatever is left to do
    return sim.finish()
