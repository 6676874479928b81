"""FM_023 database is locked: another writer's lock, a moment long, fails the work.

Several worker processes share one SQLite file. SQLite admits one writer at a time; the
others must wait for the lock. The naive setup does not wait: Python's `sqlite3` opened
with no busy timeout, and transactions begun DEFERRED, which take the write lock only at
their first write and, finding it held then, fail at once whatever the timeout. So a
worker whose commit meets another worker's commit gets "database is locked", abandons an
attempt that had done its work, and the job waits out its lease to be tried again; a job
unlucky three times goes DEAD though its handler never failed. The guard is to wait: every
transaction takes the lock as it begins (`BEGIN IMMEDIATE`) and waits for it (a busy
timeout), so contention costs a moment and never an error.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry import scenario as fm001
from runtime.faults import SITES, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation

META = Meta(
    id="FM_023",
    title="Database is locked: a writer that does not wait for the lock fails the work",
    lever="wait_for_write_lock",
    invariants=("INV_013",),
    summary="Another process holds SQLite's write lock for a moment; a transaction that "
    "does not wait for it (deferred, no busy timeout) fails at once and the work it was "
    "part of is abandoned.",
    marks=("lock.waited",),
    found_within=2,
    sqlite_only="SQLite's one write lock is the subject; a PostgreSQL writer waits for the"
    " rows it needs, and the lever does not reach it",
)

MIX = FaultMix(sites=(*SITES, "lock_contention"))
"""Every fault site, and another process holding the write lock besides."""


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = MIX
) -> Scenario:
    """The world the explorer searches: FM_001's `jobs` orders and `workers` workers, with
    every fault site and another process taking the write lock now and then."""
    return fm001.scenario(policies, jobs, workers, mix)


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`."""
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    sim = fm001.one_order(policies)
    sim.step("w1", until="effect_applied")  # w1 leases order 1001, starts, works it out
    sim.hold_write_lock("w1")  # another process is mid-commit as w1 comes to commit
    sim.drain("w1")  # w1's commit meets the held lock
    sim.advance(policies.lease_s)  # nobody acks: the lease runs out
    sim.reap()
    sim.drain("w2")  # w2 does the job again
    return sim.finish()
