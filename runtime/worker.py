"""One worker: carries one lease through named steps, as a generator.

A worker yields after each step, so whoever drives it (a scripted scenario, the simulator)
decides when the next step runs, can interleave several workers, and can crash one
between any two steps by simply never resuming it. A crash loses only what was in memory;
everything durable is in the store.

    leased -> started -> effect_applied -> committed -> acked

`effect_applied` is the point where the handler has produced its effect. Without the
commit boundary the effect is written right there, on its own; with it (GUARDED) the
effect waits in memory and is written inside the commit, so a crash between the two
leaves nothing half-done. An external effect (runtime.effects) cannot wait: it is called
right there, and a timeout on its answer fails the attempt like a handler error.

A handler that raises ends the attempt at `failed` (the error is recorded and the job
retried or dead-lettered); a refused write ends it at `lease_lost` (without lever
`fencing` only the state machine refuses one, FM_003);
a transaction the store could not run ends it at `store_error`. Either way the worker lets
go: the lease runs out and the reaper hands the job on, so nothing accepted is lost.

Three levers change the path. Without `failure_capture` a handler's exception is swallowed
and the attempt goes on to commit and ack with no effect (FM_009). Without
`ack_after_commit` the job is acknowledged on receipt and the work follows unguarded:
leased -> started (the job is already SUCCEEDED) -> effect_applied (FM_012). Without
`one_transaction` the completion is torn into four transactions: ... effect_applied ->
effect_recorded -> committed -> marked_done -> acked (FM_007).

A credit to a balance (runtime.accounts) is a read-modify-write: the handler's effect
reads the balance by `effect_applied`, and the commit writes the sum back. A commit that
finds the balance changed since the read fails the attempt (`Conflict`) and it is retried.
"""

from collections.abc import Callable, Iterator, Mapping

from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import (
    Conflict,
    IllegalTransition,
    LeaseLost,
    StoreUnavailable,
    Unavailable,
)
from runtime.queue import Job, Lease, Queue

STEPS = ("leased", "started", "effect_applied", "committed", "acked")
ENDINGS = ("failed", "lease_lost", "store_error")

Handler = Callable[[Job], Effect]


class Worker:
    def __init__(
        self,
        name: str,
        queue: Queue,
        handlers: Mapping[str, Handler],
        kinds: tuple[str, ...] | None = None,
    ) -> None:
        """`kinds`: lease only jobs of these kinds (a worker process started for some of
        the handlers); None: any kind."""
        self.name = name
        self.queue = queue
        self.handlers = handlers
        self.kinds = kinds
        self.lease: Lease | None = None
        """The lease of the attempt in hand, which its steps concern."""
        self.held: tuple[Lease, ...] = ()
        """Every lease in the worker's hands, for a heartbeat to extend (runtime.process):
        the attempt's, or a batch's until its completion is written (a job run early in
        the batch waits for the others), less those that failed or were lost."""
        self.before_completion: Callable[[], None] | None = None
        """Called as a batch's completion is about to be written, with no step between: a
        heartbeat stops there, or it could extend a lease the completion just ended and
        log the refusal as a lost lease."""
        self.in_external_call = False
        """True while the worker waits on an external call's answer (at `effect_applied`):
        where a timeout can strike after the call has applied."""

    def attempt(self) -> Iterator[str]:
        """Lease one ready job and run it, yielding each step's name once it is done.

        Yields nothing when no job is ready.
        """
        try:
            lease = self.queue.lease(self.name, self.kinds)
        except StoreUnavailable as error:
            yield self._store_error(error, None)
            return
        if lease is None:
            return
        self.lease, self.held = lease, (lease,)
        try:
            yield from self._attempt(lease)
        finally:
            self.lease, self.held = None, ()

    def attempts(self, count: int) -> Iterator[str]:
        """Lease up to `count` ready jobs in one transaction, each started in it, run them
        one after another, then complete them all (each one's effect, commit and
        acknowledgement, fenced) in one transaction: two transactions for the batch where
        `attempt` takes four a job. The steps yielded are the same, a job's `committed` and
        `acked` once the batch is complete. With any lever off it is `attempt`, one job at
        a time: the levers are about the separate steps."""
        if self.queue.policies.levers_off():
            yield from self.attempt()
            return
        try:
            leases = self.queue.lease_many(self.name, count, self.kinds, start=True)
        except StoreUnavailable as error:
            yield self._store_error(error, None)
            return
        done: list[tuple[Lease, Effect | None]] = []
        self.held = tuple(leases)
        try:
            for lease in leases:
                self.lease = lease
                try:
                    yield from self._attempt(lease, completing=done)
                finally:
                    self.lease = None
                if not done or done[-1][0] is not lease:  # it failed, or was lost
                    self.held = tuple(held for held in self.held if held is not lease)
            self.held = ()
            if self.before_completion is not None:
                self.before_completion()
            if done:
                yield from self._complete(done)
        finally:
            self.held = ()

    def _complete(self, done: list[tuple[Lease, Effect | None]]) -> Iterator[str]:
        try:
            completed = self.queue.complete_many(done)
        except StoreUnavailable as error:
            self.lease = done[0][0]
            yield self._store_error(error, self.lease)  # the batch's leases run out together
            self.lease = None
            return
        for (lease, _), ok in zip(done, completed, strict=True):
            self.lease = lease
            if ok:
                yield "committed"
                yield "acked"
            else:
                yield "lease_lost"
        self.lease = None

    def _attempt(
        self, lease: Lease, *, completing: list[tuple[Lease, Effect | None]] | None = None
    ) -> Iterator[str]:
        """One attempt from its lease. `completing`: leased and started by `attempts`; the
        attempt ends with its effect added there, for the batch's one completion."""
        started = completing is not None
        yield "leased"
        try:
            if not self.queue.policies.ack_after_commit:
                yield from self._acked_on_receipt(lease)
                return
            if not started:
                self.queue.start(lease)
            yield "started"
            job = self._job(lease)
            handler = self.handlers.get(job.kind)
            effect: Effect | None
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                effect = handler(job)
                if effect is not None:
                    effect = self.queue.read_for(effect)
            except Exception as error:  # noqa: BLE001 - a failed attempt becomes recorded state
                if self.queue.policies.failure_capture:
                    self.queue.fail(lease, f"{type(error).__name__}: {error}")
                    yield "failed"
                    return
                effect = None  # swallowed: the attempt carries on as if the handler had worked
            try:
                if effect is not None and effect.external:
                    self.in_external_call = True
                    self.queue.call_external(lease, effect)
                elif effect is not None and not self.queue.policies.commit_boundary:
                    self.queue.apply_effect(lease, effect)
                yield "effect_applied"
            except TimeoutError as error:  # the call applied, but its answer never came
                self.queue.fail(lease, f"TimeoutError: {error}")
                yield "failed"
                return
            except Unavailable as error:  # the dependency refused: nothing was applied
                self.in_external_call = False  # answered: nothing left to time out
                self.queue.fail(lease, f"Unavailable: {error}")
                yield "failed"
                return
            finally:
                self.in_external_call = False
            if not self.queue.policies.one_transaction:
                yield from self._torn_completion(lease, effect)
                return
            if completing is not None:
                completing.append((lease, effect))
                return
            self.queue.commit(lease, effect)
            yield "committed"
            self.queue.ack(lease)
            yield "acked"
        except LeaseLost:
            yield "lease_lost"
        except Conflict as error:  # the balance moved since it was read: retry, read afresh
            yield self._fail_after_conflict(lease, f"Conflict: {error}")
        except IllegalTransition:
            if self.queue.policies.fencing:
                raise  # with the fence up, only a bug in the runtime gets this far
            yield "lease_lost"  # unfenced: the state machine refused a write of a lost job
        except StoreUnavailable as error:
            yield self._store_error(error, lease)

    def _store_error(self, error: StoreUnavailable, lease: Lease | None) -> str:
        """The store could not run a transaction: the attempt ends here, and the reaper
        hands its job on once the lease runs out. A refusal for contention is recorded."""
        self.queue.marks.hit("store.unavailable")
        if error.busy:
            self.queue.report_refusal(self.name, lease, error)
        return "store_error"

    def _fail_after_conflict(self, lease: Lease, error: str) -> str:
        """Fail the attempt whose compare-and-set was refused; returns the step it ends at."""
        try:
            self.queue.fail(lease, error)
        except LeaseLost:
            return "lease_lost"
        except StoreUnavailable as refused:
            return self._store_error(refused, lease)
        return "failed"

    def _torn_completion(self, lease: Lease, effect: Effect | None) -> Iterator[str]:
        """Lever `one_transaction` off: the completion in four transactions, not two. The
        effect record, the commit, the ack's moves and the ack's event each commit on their
        own, so a crash (or a failed transaction) can fall between them."""
        if effect is not None and self.queue.policies.commit_boundary and not effect.external:
            self.queue.record_effect(lease, effect)
            yield "effect_recorded"
        self.queue.commit(lease, None)
        yield "committed"
        self.queue.mark_succeeded(lease)
        yield "marked_done"
        self.queue.log_succeeded(lease)
        yield "acked"

    def _acked_on_receipt(self, lease: Lease) -> Iterator[str]:
        """Lever `ack_after_commit` off: the job is acknowledged as soon as it is received,
        and the work follows on its own. A crash in between leaves a SUCCEEDED job whose
        work never happened, and nothing will ever run it again."""
        self.queue.ack_on_receipt(lease)
        yield "started"
        job = self._job(lease)
        try:
            effect = self.queue.read_for(self.handlers[job.kind](job))
        except Exception:  # noqa: BLE001 - acknowledged already: nowhere is left to record it
            yield "failed"
            return
        self.queue.apply_after_ack(lease, effect)
        yield "effect_applied"

    def _job(self, lease: Lease) -> Job:
        """The job a handler is given: as its lease took it (no second read), so a handler
        sees its own attempt whatever has happened to the job since."""
        return self.queue.get(lease.job_id) if lease.job is None else lease.job

    def run_one(self) -> list[str]:
        """Run one attempt to its end, with no one interleaving; returns the steps taken."""
        return list(self.attempt())


def until_quiet(
    queue: Queue, crew: list[Worker], on_step: Callable[[Worker, str], None] | None = None
) -> int:
    """Let `crew` take turns, an attempt each, until nothing is left to do; returns the
    attempts run. Expired leases (of a worker that died earlier) are swept first. On a
    simulated clock, when nothing is ready the clock moves to the next retry or lease
    expiry; on a real clock the loop stops there, and the retries wait for a later run.
    `on_step` sees every step as it is taken (the intent log's sync latency)."""
    simulated = queue.clock if isinstance(queue.clock, SimClock) else None
    attempts = 0
    while True:
        if queue.has_expired_lease():
            queue.reap()
        ran = 0
        for worker in crew:
            steps = 0
            for step in worker.attempt():
                steps += 1
                if on_step is not None:
                    on_step(worker, step)
            ran += steps > 0
        attempts += ran
        if ran:
            continue
        deadline = queue.next_deadline()
        if deadline is None or simulated is None:
            return attempts
        simulated.set(max(deadline, simulated.now()))
