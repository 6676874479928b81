"""Coverage marks: named counters the runtime bumps where a guard does its work.

Prior art: TigerBeetle's coverage marks and Antithesis's "sometimes" assertions. A test
that explores a thousand seeds and finds no violation proves nothing if no seed ever
drove a worker into a stale write: the fence was never asked. Each guard bumps its mark
when it acts, the simulator bumps one per fault it fires, and a prevent test requires its
failure mode's marks to be hit, so a pass is never vacuous.
"""

from collections import Counter

MARKS: dict[str, str] = {
    "fence.refused": "a worker's write was refused because its lease was lost (fencing)",
    "effect.absorbed": "a retry's commit found the job's effect recorded and absorbed it",
    "submit.absorbed": "a submit reused an idempotency key and got the first job back",
    "reaper.rescued": "the reaper returned a job with an expired lease to the queue",
    "cas.conflict": "a compare-and-set found the row changed since it was read and refused",
    "retry.scheduled": "a failed attempt was scheduled to run again after a backoff",
    "job.dead": "a job spent its attempt budget and went to the dead letters",
    "dependency.refused": "a dependency refused a call: it was down, or overloaded",
    "derived.replaced": "a rebuild replaced a derived view's stored rows instead of adding to them",
    "projection.skipped": "a projection older than the read model's row was delivered and"
    " changed nothing",
    "rebuild.swapped": "a rebuild of the read model swapped its shadow table in whole",
    "read.during_rebuild": "a reader read the read model while a rebuild of it was under way",
    "store.unavailable": "a transaction could not begin or commit and was rolled back",
    "store.refused": "the store refused a transaction because another writer held its lock",
    "lock.waited": "a transaction found another writer holding the write lock and waited for it",
    "fault.lock_contention": "the simulator had another process hold the write lock as a"
    " worker's next transaction began",
    "fault.crash": "the simulator killed a worker after a step",
    "fault.pause": "the simulator paused a worker past its lease (a zombie)",
    "fault.lost_ack": "the simulator dropped a worker's acknowledgement",
    "fault.duplicate_delivery": "the simulator delivered a client's submit twice",
    "fault.clock_jump": "the simulator stepped the clock forward or back",
    "fault.db_error": "the simulator failed a worker's next transaction",
    "fault.wall_clock_step": "the simulator stepped one worker's wall clock forward or back",
    "clock.overruled": "a lease deadline was set or checked on the store's clock while the"
    " worker's own wall clock read otherwise",
    "fault.client_crash": "the simulator killed the client between two of its transactions",
    "fault.view_corrupt": "the simulator garbled a row of the tickets read model",
    "views.suspect": "a reconciliation found read-model rows that differ from the projection"
    " of the write model at their own version",
    "fault.external_timeout": "the simulator lost the answer of an external call that applied",
}


class Marks(Counter[str]):
    """Counts of marks hit; only registered names, so a typo fails loudly."""

    def hit(self, name: str) -> None:
        if name not in MARKS:
            raise KeyError(f"unknown mark {name!r}; register it in runtime.marks.MARKS")
        self[name] += 1
