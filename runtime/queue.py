"""The job queue: submit, lease, heartbeat, commit, ack, fail, reap, redrive.

Prior art: SQS visibility timeouts (a lease that expires), Kleppmann's fencing tokens (a
number that grows with every lease, checked on every write), huey's short list of storage
verbs. Delivery is at-least-once: a job whose worker dies is leased again once its lease
expires and the reaper has swept.

Every public method is one store transaction, and every state change it makes is logged
in the same transaction as one event whose detail records the move (`job_state`,
`execution_state`: [before, after]). A worker's write (start, heartbeat, effect, commit,
ack, fail) is fenced: it goes through only while the worker's lease is the job's newest
and has not expired. A refused write changes nothing but a `lease.lost` event.

A method reads its time once its transaction has begun: a writer that waited for the lock
sets and checks leases by the time it got it, and on PostgreSQL the server's clock is read
in the round trip that begins the transaction.
"""

import contextlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from runtime import accounts, dependency, effects, states
from runtime.clock import Clock
from runtime.dependency import Remote
from runtime.effects import Effect
from runtime.errors import (
    Conflict,
    LeaseLost,
    StoreUnavailable,
    Unavailable,
    UnknownJob,
    UsageError,
)
from runtime.marks import Marks
from runtime.moves import (
    held_by,
    job_row,
    lock_effect,
    log_started,
    log_succeeded,
    lost_reason,
    move_execution,
    move_job,
    succeed,
)
from runtime.policies import GUARDED, Policies
from runtime.records import Job, Lease, Statistics, job_from_row
from runtime.store import Store, Tx, dumps
from runtime.tickets import projection

REAPER = "reaper"
_EXPIRED_LEASES = (
    "FROM executions e JOIN jobs j ON j.id = e.job_id"
    " WHERE e.finished_at IS NULL AND e.status IN ('LEASED', 'IN_PROGRESS', 'COMMITTED')"
    " AND e.lease_expires_at <= ? AND j.state = 'RUNNING'"
    " AND j.fencing_token = e.fencing_token"
)
"""The open executions whose lease had run out by `?`: what the reaper rescues."""
_EXPIRED_SQL = (
    "SELECT e.id, e.job_id, e.status, e.worker, e.lease_expires_at,"
    f" j.attempts, j.max_attempts {_EXPIRED_LEASES} ORDER BY +e.id"
)
"""`+e.id`: the same order, but SQLite, seeing no index to order by, no longer prefers to
read every job and look up its execution (2 ms at 50,000 jobs) over the index of open
executions (executions_open) and a lookup of each one's job (microseconds)."""
T = TypeVar("T")
_BORN = {False: states.LEASED, True: states.IN_PROGRESS}
"""The status an execution row is written with: LEASED, or IN_PROGRESS when leased and
started in one transaction (`lease_many(start=True)`)."""


def validated_payload(kind: str, payload: Any) -> str:
    """The payload as canonical JSON, or UsageError for a job no worker could run."""
    if not isinstance(kind, str) or not kind.strip():
        raise UsageError(f"job kind must be a non-empty string, got {kind!r}")
    if not isinstance(payload, dict):
        raise UsageError(f"job payload must be a JSON object, got {type(payload).__name__}")
    try:
        return dumps(payload)
    except (TypeError, ValueError) as error:
        raise UsageError(f"job payload is not JSON: {error}") from None


def next_retry_at(now: float, attempt: int, rng: random.Random, policies: Policies) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(max, base * 2^(n-1))],
    or in [0, the n-th delay of `retry_schedule_s`] when one is stated; without lever
    `backoff_jitter`, the ceiling itself (FM_006).

    Prior art: AWS Builders' Library, "Timeouts, retries, and backoff with jitter". Rounded
    to the millisecond so timelines print the same bytes on every platform.
    """
    schedule = policies.retry_schedule_s
    if schedule:  # a stated schedule: the n-th ceiling, the last one repeating
        ceiling = schedule[min(attempt, len(schedule)) - 1]
    else:
        doublings = min(attempt - 1, 1023)  # 2.0 ** 1024 overflows a float; the cap is long hit
        ceiling = min(policies.retry_delay_s_max, policies.retry_delay_s_base * 2.0**doublings)
    if not policies.backoff_jitter:  # every job that failed together retries together
        return round(now + ceiling, 3)
    return round(now + rng.uniform(0.0, ceiling), 3)


class Queue:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        rng: random.Random,
        policies: Policies = GUARDED,
        remotes: Mapping[str, Remote] | None = None,
        walls: Mapping[str, Clock] | None = None,
    ) -> None:
        """`clock` is the store's: the time authority, which stamps every event.
        `remotes`: the dependencies external calls land in, by sink (runtime.dependency);
        a call to any other sink is always served. `walls`: each worker's own wall clock,
        which only a queue without lever `store_clock` reads (FM_010)."""
        self.store = store
        self.clock = clock
        self.rng = rng
        self.policies = policies
        self.remotes = dict(remotes or {})
        self.walls = dict(walls or {})
        self.marks = Marks()
        self._deferred_counts: dict[int, list[tuple[str, int]]] = {}
        """Without lever `atomic_projection`: per execution, the status counts its
        projection moved at the commit, for its ack to write. Held in this process's
        memory only: an execution whose worker dies before its ack never writes them."""

    # --- client -----------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        delay_s: float = 0.0,
    ) -> int:
        """Accept a job durably; returns its id. With a key already used, the first job's id
        (lever `submit_idempotency`; without it the key is only logged, and a repeated
        submit is a second job).

        Atomic: the job row and its `job.submitted` event commit together.
        """
        with self.store.transaction() as tx:
            return self.enqueue(
                tx,
                kind,
                payload,
                idempotency_key=idempotency_key,
                max_attempts=max_attempts,
                delay_s=delay_s,
            )

    def submit_many(self, kind: str, payloads: Iterable[dict[str, Any]]) -> list[int]:
        """Accept many jobs of one kind durably in one transaction, each with its
        `job.submitted` event: one commit (one disk sync) for the lot. All or none: a
        payload refused refuses the batch. Returns their ids, in order."""
        with self.store.transaction() as tx:
            return [self.enqueue(tx, kind, payload) for payload in payloads]

    def enqueue(
        self,
        tx: Tx,
        kind: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        delay_s: float = 0.0,
    ) -> int:
        """`submit`, inside the caller's transaction: the job is accepted if and only if
        what the caller writes with it commits (a transactional outbox; runtime.intents)."""
        payload_json = validated_payload(kind, payload)
        max_attempts = self.policies.attempts_max if max_attempts is None else max_attempts
        if max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {max_attempts}")
        if delay_s < 0:
            raise UsageError(f"delay_s must not be negative, got {delay_s}")
        now = self.clock.now()
        deduplicated = idempotency_key if self.policies.submit_idempotency else None
        if deduplicated is not None:
            tx.lock_key(f"submit {idempotency_key}")  # two submits of one key: one job
            row = tx.one("SELECT id FROM jobs WHERE idempotency_key = ?", (idempotency_key,))
            if row is not None:
                tx.event(now, "job.submit_absorbed", job=row["id"], key=idempotency_key)
                self.marks.hit("submit.absorbed")
                return row["id"]
        states.require_job_transition(None, states.PENDING)
        job_id = tx.insert(
            "INSERT INTO jobs (kind, payload, idempotency_key, state, max_attempts, run_at,"
            " created_at, updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?)",
            (kind, payload_json, deduplicated, max_attempts, now + delay_s, now, now),
        )
        tx.event(
            now,
            "job.submitted",
            job=job_id,
            job_state=[None, states.PENDING],
            kind=kind,
            key=idempotency_key,
            run_at=now + delay_s,
        )
        return job_id

    # --- worker -----------------------------------------------------------------------

    def lease(self, worker: str, kinds: tuple[str, ...] | None = None) -> Lease | None:
        """Lease the oldest ready job to `worker` (of one of `kinds`, when given), or None
        when nothing is ready.

        Atomic: the job goes RUNNING with a new fencing token, and the execution row and the
        `job.leased` event are written, in one transaction.
        """
        leases = self.lease_many(worker, 1, kinds)
        return leases[0] if leases else None

    def lease_many(
        self,
        worker: str,
        count: int,
        kinds: tuple[str, ...] | None = None,
        *,
        start: bool = False,
    ) -> list[Lease]:
        """Lease up to `count` of the oldest ready jobs to `worker`, in one transaction;
        `start=True` also marks each execution IN_PROGRESS (`execution.started`), for a
        worker that runs them at once (`runtime.worker.Worker.attempts`). Each job is
        leased exactly as `lease` leases one: its own token, execution and events."""
        if count < 1:
            raise UsageError(f"count must be at least 1, got {count}")
        leases = []
        with self.store.transaction() as tx:
            now = self.clock.now()
            if kinds is None:
                rows = tx.all(
                    "SELECT * FROM jobs"
                    " WHERE state = 'PENDING' AND run_at <= ? ORDER BY run_at, id LIMIT ?"
                    + tx.skip_locked,
                    (now, count),
                )
            else:
                rows = tx.all(
                    "SELECT * FROM jobs WHERE state = 'PENDING'"
                    f" AND run_at <= ? AND kind IN ({', '.join('?' * len(kinds))})"
                    " ORDER BY run_at, id LIMIT ?" + tx.skip_locked,
                    (now, *kinds, count),
                )
            for row in rows:
                leases.append(self._grant(tx, now, worker, row, start))
        return leases

    def _grant(self, tx: Tx, now: float, worker: str, row: Any, start: bool) -> Lease:
        job_id, attempt, token = row["id"], row["attempts"] + 1, row["fencing_token"] + 1
        expires_at = self._deadline_clock(worker, now) + self.policies.lease_s
        move_job(
            tx, job_id, states.PENDING, states.RUNNING, now, attempts=attempt, fencing_token=token
        )
        states.require_execution_transition(None, states.LEASED)
        if start:  # by way of LEASED, in one row: both moves are logged below
            states.require_execution_transition(states.LEASED, states.IN_PROGRESS)
        execution_id = tx.insert(
            "INSERT INTO executions (job_id, attempt, worker, fencing_token,"
            " lease_expires_at, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, attempt, worker, token, expires_at, _BORN[start], now),
        )
        tx.event(
            now,
            "job.leased",
            job=job_id,
            execution=execution_id,
            worker=worker,
            job_state=[states.PENDING, states.RUNNING],
            execution_state=[None, states.LEASED],
            attempt=attempt,
            token=token,
            lease_expires_at=expires_at,
        )
        lease = Lease(
            job_id,
            execution_id,
            worker,
            token,
            attempt,
            expires_at,
            job_from_row(
                row, state=states.RUNNING, attempts=attempt, fencing_token=token, updated_at=now
            ),
        )
        if start:
            tx.event(
                now,
                "execution.started",
                **held_by(lease),
                execution_state=[states.LEASED, states.IN_PROGRESS],
            )
        return lease

    def heartbeat(self, lease: Lease) -> Lease:
        """Extend a held lease by `lease_s` from now. Fenced."""

        def extend(tx: Tx, now: float) -> Lease:
            expires_at = self._deadline_clock(lease.worker, now) + self.policies.lease_s
            tx.execute(
                "UPDATE executions SET lease_expires_at = ? WHERE id = ?",
                (expires_at, lease.execution_id),
            )
            tx.event(now, "lease.extended", **held_by(lease), lease_expires_at=expires_at)
            return replace(lease, expires_at=expires_at)

        return self._fenced(lease, "heartbeat", extend)

    def start(self, lease: Lease) -> None:
        """Mark the execution IN_PROGRESS: the handler is about to run. Fenced."""

        self._fenced(lease, "start", lambda tx, now: log_started(tx, now, lease))

    def apply_effect(self, lease: Lease, effect: Effect) -> None:
        """Apply the effect on its own, outside the commit (commit boundary off). Fenced."""

        def apply(tx: Tx, now: float) -> None:
            lock_effect(tx, effect)
            self._apply(tx, now, lease, effect)

        self._fenced(lease, "apply effect", apply)

    def call_external(self, lease: Lease, effect: Effect) -> None:
        """Call another system with an external effect, carrying its key as the idempotency
        key: a repeat is answered with the first call's result (`effect.absorbed`). Without
        lever `external_idempotency` no key travels, and every call applies.

        Not fenced: the other system does not know our leases. One transaction stands for
        the other system's own record of the call. A call to a declared dependency is
        logged with its answer (`dependency.called`); a refused one applies nothing and
        raises `Unavailable`.
        """
        now = self.clock.now()
        remote = self.remotes.get(effect.sink)
        refused = None if remote is None else remote.answer(now)
        with self.store.transaction() as tx:
            lock_effect(tx, effect)
            if remote is not None:
                tx.event(
                    now,
                    dependency.CALLED,
                    **held_by(lease),
                    sink=effect.sink,
                    key=effect.key,
                    attempt=lease.attempt,
                    answer=refused or "served",
                )
            if refused is None and self.policies.external_idempotency:
                self._apply_once(tx, now, lease, effect, scope=None)
            elif refused is None:
                self._apply(tx, now, lease, effect)
        if refused is not None:
            self.marks.hit("dependency.refused")
            raise Unavailable(refused)

    def commit(self, lease: Lease, effect: Effect | None) -> None:
        """Record that the attempt's work is done (`effect` None: it made none). Fenced.

        With the commit boundary (GUARDED), the effect is written here, in the same
        transaction, unless this job's effect is already recorded: then the repeat is
        absorbed (`effect.absorbed`) and nothing is applied twice. An external effect was
        called before; the commit records only that the work is done.
        """

        def mark(tx: Tx, now: float) -> None:
            if effect is not None and self.policies.commit_boundary and not effect.external:
                lock_effect(tx, effect)
                self._apply_once(tx, now, lease, effect, scope=lease.job_id)
            move_execution(tx, lease.execution_id, states.IN_PROGRESS, states.COMMITTED)
            tx.event(
                now,
                "execution.committed",
                **held_by(lease),
                execution_state=[states.IN_PROGRESS, states.COMMITTED],
            )

        self._fenced(lease, "commit", mark)

    def complete(self, lease: Lease, effect: Effect | None) -> None:
        """`commit` and `ack` in one transaction: the effect (absorbed if the job's is
        already recorded), COMMITTED, then DONE and SUCCEEDED, each move with its event, as
        the two would write them. One commit a job instead of two, and no crash can fall
        between them. Fenced. Needs the commit boundary (the effect inside the commit); an
        external effect was called before, as for `commit`."""
        self._needs_commit_boundary()

        def finish(tx: Tx, now: float) -> None:
            if effect is not None and not effect.external:
                lock_effect(tx, effect)
            self._finish(tx, now, lease, effect)

        self._fenced(lease, "complete", finish)

    def complete_many(self, done: Sequence[tuple[Lease, Effect | None]]) -> list[bool]:
        """Complete several attempts in one transaction, each as `complete` would: one
        commit for a worker's whole batch. Each is fenced on its own: a lost lease is
        refused (`lease.lost`) and the others go through. Returns, per attempt, whether it
        completed. A crash before this commits leaves every attempt of the batch to be
        rescued and run again (at least once, as always; the commit boundary keeps each
        effect once)."""
        self._needs_commit_boundary()
        completed = []
        with self.store.transaction() as tx:
            now = self.clock.now()
            # Every lock before any event: the jobs, then the effects, each in one order.
            tx.lock_jobs(*sorted({lease.job_id for lease, _ in done}))
            for effect in sorted(
                (e for _, e in done if e is not None and not e.external),
                key=lambda e: (e.sink, e.key),
            ):
                lock_effect(tx, effect)
            for lease, effect in done:
                held = self._still_held(tx, now, lease, "complete") is None
                if held:
                    self._finish(tx, now, lease, effect)
                completed.append(held)
        return completed

    def _needs_commit_boundary(self) -> None:
        if not self.policies.commit_boundary:
            raise UsageError("completing writes the effect in the commit: lever commit_boundary")

    def _finish(self, tx: Tx, now: float, lease: Lease, effect: Effect | None) -> None:
        """The effect, then IN_PROGRESS -> COMMITTED -> DONE and RUNNING -> SUCCEEDED: both
        execution moves in one row update, each logged with its event."""
        if effect is not None and not effect.external:
            self._apply_once(tx, now, lease, effect, scope=lease.job_id)
        move_execution(
            tx,
            lease.execution_id,
            states.IN_PROGRESS,
            states.DONE,
            through=states.COMMITTED,
            finished_at=now,
        )
        tx.event(
            now,
            "execution.committed",
            **held_by(lease),
            execution_state=[states.IN_PROGRESS, states.COMMITTED],
        )
        move_job(tx, lease.job_id, states.RUNNING, states.SUCCEEDED, now)
        log_succeeded(tx, now, lease)

    def _apply(self, tx: Tx, now: float, lease: Lease, effect: Effect) -> None:
        """Record `effect` as applied by the attempt `lease` stands for; a credit also
        writes its account's new balance (runtime.accounts), compare-and-set unless lever
        `compare_and_set` is off; a ticket's projection, its read-model row
        (runtime.tickets.projection), when it is newer."""
        effects.apply(
            tx,
            now,
            effect,
            job_id=lease.job_id,
            execution_id=lease.execution_id,
            worker=lease.worker,
        )
        if effect.sink == projection.SINK:
            deferred = None
            if not self.policies.atomic_projection:  # the counts wait for the ack (FM_021)
                deferred = self._deferred_counts.setdefault(lease.execution_id, [])
            if not projection.write(tx, now, effect, self.policies, deferred, **held_by(lease)):
                self.marks.hit("projection.skipped")
            return
        if effect.sink != accounts.SINK:
            return
        try:
            accounts.write(
                tx, now, effect, compare_and_set=self.policies.compare_and_set, **held_by(lease)
            )
        except Conflict:
            self.marks.hit("cas.conflict")
            raise

    def read_for(self, effect: Effect) -> Effect:
        """The read a read-modify-write effect starts from (a credit: its account's balance
        and version, runtime.accounts; without lever `conditional_write`, a projection: its
        row's version, runtime.tickets.projection); any other effect as it is. A read: not
        fenced."""
        if effect.sink == accounts.SINK:
            return accounts.read(self.store, effect)
        if effect.sink == projection.SINK and not self.policies.conditional_write:
            return projection.read(self.store, effect)
        return effect

    def _apply_once(
        self, tx: Tx, now: float, lease: Lease, effect: Effect, *, scope: int | None
    ) -> None:
        """Apply `effect` unless it is already recorded (for job `scope`, or for any job when
        None: an external system knows keys, not jobs); then absorb the repeat instead."""
        first = effects.find(tx, effect, job_id=scope)
        if first is None:
            self._apply(tx, now, lease, effect)
            return
        tx.event(
            now,
            "effect.absorbed",
            **held_by(lease),
            sink=effect.sink,
            key=effect.key,
            effect=first.id,
            first_execution=first.execution_id,
            **({"external": True} if effect.external else {}),
        )
        self.marks.hit("effect.absorbed")

    def ack(self, lease: Lease) -> None:
        """Finish the job: SUCCEEDED, execution DONE, lease released, and the event that
        says so, in one transaction. Fenced."""

        deferred = self._deferred_counts.pop(lease.execution_id, ())  # taken, whatever happens

        def finish(tx: Tx, now: float) -> None:
            succeed(tx, now, lease)
            for status, delta in deferred:
                projection.count(tx, status, delta)
            log_succeeded(tx, now, lease)

        self._fenced(lease, "ack", finish)

    def record_effect(self, lease: Lease, effect: Effect) -> None:
        """Lever `one_transaction` off: the commit's effect record in a transaction of its
        own, before the commit's move (`commit(lease, None)`). Fenced."""

        def record(tx: Tx, now: float) -> None:
            lock_effect(tx, effect)
            self._apply_once(tx, now, lease, effect, scope=lease.job_id)

        self._fenced(lease, "record effect", record)

    def mark_succeeded(self, lease: Lease) -> None:
        """Lever `one_transaction` off: the ack's moves alone, in a transaction of their own;
        `log_succeeded` writes their event in another. Fenced."""
        self._fenced(lease, "ack", lambda tx, now: succeed(tx, now, lease))

    def log_succeeded(self, lease: Lease) -> None:
        """Lever `one_transaction` off: the `job.succeeded` event, after the moves it
        records. Not fenced: the job is no longer RUNNING, so a fence would refuse it."""
        with self.store.transaction() as tx:
            log_succeeded(tx, self.clock.now(), lease)

    def ack_on_receipt(self, lease: Lease) -> None:
        """Lever `ack_after_commit` off: tell the queue the job is done as soon as it is
        received, before any work. The execution goes through every move to DONE and the
        job to SUCCEEDED, logged move by move, in one transaction. Fenced."""

        def finish(tx: Tx, now: float) -> None:
            moves = (
                ("execution.started", states.LEASED, states.IN_PROGRESS),
                ("execution.committed", states.IN_PROGRESS, states.COMMITTED),
            )
            for kind, before, after in moves:
                move_execution(tx, lease.execution_id, before, after)
                tx.event(now, kind, **held_by(lease), execution_state=[before, after])
            move_execution(tx, lease.execution_id, states.COMMITTED, states.DONE, finished_at=now)
            move_job(tx, lease.job_id, states.RUNNING, states.SUCCEEDED, now)
            tx.event(
                now,
                "job.succeeded",
                **held_by(lease),
                job_state=[states.RUNNING, states.SUCCEEDED],
                execution_state=[states.COMMITTED, states.DONE],
                on_receipt=True,
            )

        self._fenced(lease, "ack", finish)

    def apply_after_ack(self, lease: Lease, effect: Effect) -> None:
        """Lever `ack_after_commit` off: the work, after the job was acknowledged on
        receipt. Not fenced (the job is already finished, so a fence would refuse it):
        nothing guards it, and nothing retries it if it never happens."""
        with self.store.transaction() as tx:
            now = self.clock.now()
            lock_effect(tx, effect)
            self._apply(tx, now, lease, effect)

    def fail(self, lease: Lease, error: str) -> str:
        """Record a failed attempt with its error; retry later, or DEAD once attempts are spent.

        Returns the job's new state. Fenced. The error is kept on the execution, in
        `last_error`, and in the event, so a dead job names what killed it, and every
        earlier attempt's error stays on its execution and its `job.retry_scheduled`.
        """
        if not error:
            raise UsageError("a failure needs an error message")

        def record(tx: Tx, now: float) -> str:
            execution = tx.one("SELECT status FROM executions WHERE id = ?", (lease.execution_id,))
            assert execution is not None
            before = execution["status"]
            move_execution(
                tx, lease.execution_id, before, states.FAILED, error=error, finished_at=now
            )
            job = job_row(tx, lease.job_id)
            if self.policies.retry_budget and job["attempts"] >= job["max_attempts"]:
                cause = self._cause_of_death(error, job["attempts"])
                move_job(tx, lease.job_id, states.RUNNING, states.DEAD, now, last_error=cause)
                tx.event(
                    now,
                    "job.dead",
                    **held_by(lease),
                    error=cause,
                    attempts=job["attempts"],
                    job_state=[states.RUNNING, states.DEAD],
                    execution_state=[before, states.FAILED],
                )
                self.marks.hit("job.dead")
                return states.DEAD
            retry_at = next_retry_at(now, job["attempts"], self.rng, self.policies)
            move_job(
                tx,
                lease.job_id,
                states.RUNNING,
                states.PENDING,
                now,
                last_error=error,
                run_at=retry_at,
            )
            tx.event(
                now,
                "job.retry_scheduled",
                **held_by(lease),
                error=error,
                retry_at=retry_at,
                attempts=job["attempts"],
                job_state=[states.RUNNING, states.PENDING],
                execution_state=[before, states.FAILED],
            )
            self.marks.hit("retry.scheduled")
            return states.PENDING

        return self._fenced(lease, "fail", record)

    # --- operators and housekeeping --------------------------------------------------

    def reap(self) -> list[int]:
        """Rescue every expired lease; returns the ids of the jobs rescued.

        Atomic: the whole sweep is one transaction. Each rescued execution goes ABORTED
        with the reason (revoked: its worker can write nothing more); its job goes back to
        PENDING, or DEAD when its attempts are spent. Without lever `fencing` the job is
        handed on but the old attempt is left as its worker last wrote it, still open.
        A `reaper.swept` event marks the sweep, rescued or not, so INV_004 can tell a
        lease nobody swept from one the reaper missed. Without lever `reaper` there is no
        reaper: this does nothing, and an expired lease holds its job forever.
        """
        if not self.policies.reaper:
            return []
        rescued: list[int] = []
        with self.store.transaction() as tx:
            now = self.clock.now()
            expired = tx.all(_EXPIRED_SQL, (now,))
            if tx.locks_rows and expired:
                # A worker may be moving one of these jobs this instant: hold them all (in
                # id order, so two sweeps cannot deadlock), then look again.
                held = sorted({row["job_id"] for row in expired})
                tx.lock_jobs(*held)
                expired = [row for row in tx.all(_EXPIRED_SQL, (now,)) if row["job_id"] in held]
            for row in expired:
                error = f"lease of {row['worker']} expired at {row['lease_expires_at']:.3f}"
                moved: dict[str, Any] = dict(job=row["job_id"], execution=row["id"], worker=REAPER)
                if self.policies.fencing:
                    move_execution(
                        tx, row["id"], row["status"], states.ABORTED, error=error, finished_at=now
                    )
                    moved["execution_state"] = [row["status"], states.ABORTED]
                if self.policies.retry_budget and row["attempts"] >= row["max_attempts"]:
                    error = self._cause_of_death(f"{error}; attempts spent", row["attempts"])
                    move_job(tx, row["job_id"], states.RUNNING, states.DEAD, now, last_error=error)
                    tx.event(
                        now,
                        "job.dead",
                        **moved,
                        error=error,
                        attempts=row["attempts"],
                        job_state=[states.RUNNING, states.DEAD],
                    )
                    self.marks.hit("job.dead")
                else:
                    move_job(
                        tx,
                        row["job_id"],
                        states.RUNNING,
                        states.PENDING,
                        now,
                        last_error=error,
                        run_at=now,
                    )
                    tx.event(
                        now,
                        "lease.expired",
                        **moved,
                        error=error,
                        job_state=[states.RUNNING, states.PENDING],
                    )
                rescued.append(row["job_id"])
                self.marks.hit("reaper.rescued")
            tx.event(now, "reaper.swept", worker=REAPER, rescued=rescued)
        return rescued

    def redrive(self, job_id: int, *, reason: str, by: str = "operator") -> None:
        """Give a DEAD job a fresh attempt budget. Explicit, logged, never automatic."""
        if not reason:
            raise UsageError("a redrive needs a reason")
        with self.store.transaction() as tx:
            now = self.clock.now()
            tx.lock_jobs(job_id)
            job = job_row(tx, job_id)
            if job["state"] != states.DEAD:
                raise UsageError(f"job {job_id} is {job['state']}, only a DEAD job is redriven")
            move_job(tx, job_id, states.DEAD, states.PENDING, now, attempts=0, run_at=now)
            tx.event(
                now,
                "job.redriven",
                job=job_id,
                worker=by,
                reason=reason,
                attempts_before=job["attempts"],
                job_state=[states.DEAD, states.PENDING],
            )

    def report_refusal(self, worker: str, lease: Lease | None, error: StoreUnavailable) -> None:
        """Record that the store refused `worker` because another writer held its lock
        (`store.refused`, which INV_013 reads): a refusal nobody records is a failure
        nobody sees. Written in a transaction of its own once the store takes writes
        again; when it refuses this one too, the refusal is only in the process's log."""
        self.marks.hit("store.refused")
        who = {"worker": worker} if lease is None else held_by(lease)
        with contextlib.suppress(StoreUnavailable), self.store.transaction() as tx:
            tx.event(self.clock.now(), "store.refused", **who, error=str(error), busy=True)

    def note(
        self, type: str, *, worker: str | None = None, job: int | None = None, **detail: Any
    ) -> int:
        """Append an annotation (a fault injected, an operator's remark). Changes no state."""
        with self.store.transaction() as tx:
            return tx.event(self.clock.now(), type, job=job, worker=worker, **detail)

    # --- reads ------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        row = self.store.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise UnknownJob(f"no job {job_id}")
        return job_from_row(row)

    def jobs(self) -> list[Job]:
        return [job_from_row(row) for row in self.store.all("SELECT * FROM jobs ORDER BY id")]

    def has_ready(self) -> bool:
        return (
            self.store.one(
                "SELECT 1 FROM jobs WHERE state = 'PENDING' AND run_at <= ? LIMIT 1",
                (self.clock.now(),),
            )
            is not None
        )

    def has_expired_lease(self) -> bool:
        return (
            self.store.one(
                f"SELECT 1 {_EXPIRED_LEASES} LIMIT 1",
                (self.clock.now(),),
            )
            is not None
        )

    def next_deadline(self) -> float | None:
        """The next instant after now when something becomes due: a lease expiry or a retry."""
        now = self.clock.now()
        return self.store.one(
            "SELECT min(t) FROM ("
            " SELECT run_at AS t FROM jobs WHERE state = 'PENDING' AND run_at > ?"
            " UNION ALL SELECT lease_expires_at FROM executions"
            " WHERE finished_at IS NULL AND status IN ('LEASED', 'IN_PROGRESS', 'COMMITTED')"
            " AND lease_expires_at > ?) due",
            (now, now),
        )[0]

    def statistics(self) -> Statistics:
        now = self.clock.now()
        counts = {state: 0 for state in states.JOB_STATES}
        for row in self.store.all("SELECT state, count(*) FROM jobs GROUP BY state"):
            counts[row[0]] = row[1]
        oldest = self.store.one("SELECT min(created_at) FROM jobs WHERE state = 'PENDING'")[0]
        return Statistics(
            pending=counts[states.PENDING],
            running=counts[states.RUNNING],
            succeeded=counts[states.SUCCEEDED],
            dead=counts[states.DEAD],
            oldest_pending_age_s=0.0 if oldest is None else now - oldest,
        )

    def _cause_of_death(self, error: str, attempts: int) -> str:
        """What a dead job is said to have died of: the error that killed it; without lever
        `cause_of_death`, a summary that names no cause (FM_015)."""
        if self.policies.cause_of_death:
            return error
        return f"retries exhausted after {attempts} attempts"

    # --- fencing ----------------------------------------------------------------------

    def _deadline_clock(self, worker: str, now: float) -> float:
        """The time a lease deadline is set from and checked against: the store's (`now`,
        read once for the operation), unless lever `store_clock` is off; then the wall
        clock of the worker that asks, stepped or not (FM_010)."""
        wall = self.walls.get(worker)
        if wall is None or wall.now() == now:
            return now
        if not self.policies.store_clock:
            return wall.now()
        self.marks.hit("clock.overruled")
        return now

    def _fenced(self, lease: Lease, action: str, write: Callable[[Tx, float], T]) -> T:
        """Run `write` only while `lease` is still held; otherwise log the refusal and raise.

        Without lever `fencing` the write runs unchecked: the store takes the worker's word
        that it still holds the job, and only the state machine can refuse the write.
        """
        with self.store.transaction() as tx:
            now = self.clock.now()
            tx.lock_jobs(lease.job_id)
            lost = self._still_held(tx, now, lease, action)
            if lost is None:
                return write(tx, now)
        raise LeaseLost(f"{lease.worker} cannot {action} job {lease.job_id}: {lost}")

    def _still_held(self, tx: Tx, now: float, lease: Lease, action: str) -> str | None:
        """None while `lease` is held (always, without lever `fencing`); else why not,
        with the refusal logged (`lease.lost`) in `tx`."""
        if not self.policies.fencing:
            return None
        lost = lost_reason(tx, lease, self._deadline_clock(lease.worker, now))
        if lost is not None:
            tx.event(
                now,
                "lease.lost",
                **held_by(lease),
                action=action,
                reason=lost,
                token=lease.fencing_token,
            )
            self.marks.hit("fence.refused")
        return lost
