"""FM_007 torn write: one state change written as several transactions, and a crash between.

The loyalty worker (FM_001's world) finishes an order with four writes: the ledger entry
(the effect record), the commit of its execution, the job's move to SUCCEEDED and the
event that logs that move. Guarded, they are two transactions, each whole: the commit
(effect record + execution COMMITTED + its event) and the ack (execution DONE + job
SUCCEEDED + `job.succeeded`). Torn into four, a crash between two of them leaves half a
state change: a ledger entry from an attempt that never committed, or a job that is
SUCCEEDED in its row while the log, which audit, replay and downstream readers follow,
still says RUNNING. The guard is one operation, one transaction: the state change, its
event and the effect record commit together or not at all.
"""

from failure_modes.catalog import Meta
from failure_modes.FM_001_duplicate_retry.scenario import HANDLERS, order
from runtime.faults import ALL_FAULTS, FaultMix
from runtime.policies import GUARDED, Policies
from runtime.sim import RunResult, Scenario, Simulation, worker_names

META = Meta(
    id="FM_007",
    title="Torn write: a state change split across transactions",
    lever="one_transaction",
    invariants=("INV_002", "INV_003"),
    summary="Effect, commit, state and event written in separate transactions; a crash "
    "between them leaves an uncommitted effect or a move the log never saw.",
    marks=("effect.absorbed",),
    found_within=1,
)

WORKERS = ("w1", "w2")


def scenario(
    policies: Policies = GUARDED, jobs: int = 3, workers: int = 2, mix: FaultMix = ALL_FAULTS
) -> Scenario:
    """The world the explorer searches: `jobs` orders, `workers` workers, every fault site."""
    return Scenario(
        jobs=tuple(order(1001 + n) for n in range(jobs)),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=policies,
        mix=mix,
    )


def run(policies: Policies = GUARDED, seed: int | None = None) -> RunResult:
    """The scripted schedule, or with a seed one explored run of `scenario(policies)`.

    Two crashes, each at the first seam of a torn completion. Guarded, those seams do not
    exist (`effect_recorded` and `marked_done` are steps only of the torn path), so the
    same schedule crashes at the nearest points of the whole transactions instead: w1
    before its commit (`effect_applied`) and w2 between commit and ack (`committed`).
    """
    if seed is not None:
        return Simulation(seed, scenario(policies)).run()
    torn = not policies.one_transaction
    sim = Simulation(
        0, Scenario(jobs=(order(1001),), handlers=HANDLERS, workers=WORKERS, policies=policies)
    )
    sim.step("w1", until="effect_recorded" if torn else "effect_applied")
    sim.crash("w1")  # torn: the ledger entry is written, the commit is not
    sim.advance(policies.lease_s)  # nobody hears from w1 again: its lease runs out
    sim.reap()  # the reaper aborts execution 1 and hands job 1 back to the queue
    sim.step("w2", until="marked_done" if torn else "committed")  # the retry's commit absorbs
    sim.crash("w2")  # torn: job SUCCEEDED and execution DONE in the rows, no event says so
    sim.advance(policies.lease_s)  # guarded, w2's committed lease runs out...
    sim.reap()  # ...and the reaper hands the job on; torn, there is nothing left to rescue
    sim.drain("w1")  # guarded, w1 (a fresh process) finishes the job; torn, nothing is ready
    return sim.finish()
