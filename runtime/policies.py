"""Every guard of the runtime, as one frozen value.

A *lever* is a boolean guard that some failure mode turns off to show why it exists:
each FM's baseline is GUARDED with exactly its one lever off (`GUARDED.without(lever)`).
Tunables (lease length, retry budget, backoff) are not levers; they size the guards.
The catalog test checks that every lever is the lever of at least one FM: no dead guards.
"""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Policies:
    # Levers.
    commit_boundary: bool = True
    """The effect is written in the same transaction as the commit of its execution, keyed
    by job, so a retry's commit finds the effect already there and absorbs it (FM_001)."""
    external_idempotency: bool = True
    """An external call carries the effect's key as its idempotency key, and the other
    system answers a repeat with the first call's result instead of applying it (FM_002)."""
    fencing: bool = True
    """A lost lease is revoked and every write is checked against it: the reaper marks the
    old attempt ABORTED, and a worker's write goes through only while its fencing token is
    the job's newest and its lease has not expired (FM_003)."""
    store_clock: bool = True
    """Lease deadlines are set and checked on the store's clock, the one time authority,
    never on the wall clock of the worker that writes (FM_010)."""
    reaper: bool = True
    """A reaper sweeps expired leases and hands their jobs back to the queue (FM_004)."""
    one_transaction: bool = True
    """Each state change is written in one transaction with its event, and the commit with
    its effect record: a crash can fall before or after, never in between (FM_007)."""
    retry_budget: bool = True
    """A job is attempted at most `max_attempts` times between redrives, then DEAD with
    every error on record (FM_005)."""
    backoff_jitter: bool = True
    """A retry's delay is drawn at random up to the backoff's ceiling (full jitter), so the
    jobs that failed together do not all retry together (FM_006)."""
    submit_idempotency: bool = True
    """A submit whose idempotency key was used before returns the first job instead of
    accepting a second one (FM_008)."""
    failure_capture: bool = True
    """A handler that raises fails its attempt, and the error is recorded (FM_009)."""
    cause_of_death: bool = True
    """A job that goes DEAD keeps the error that killed it, on the job (`last_error`) and on
    its `job.dead` event, not a summary such as "retries exhausted" (FM_015)."""
    compare_and_set: bool = True
    """A read-modify-write (a credit to a balance) writes back only if the row is still at
    the version it read; otherwise the attempt fails with a conflict and is retried,
    reading afresh (FM_011)."""
    intent_first: bool = True
    """An intent is written to the intent log in the same transaction as the work that
    follows from it, never after that work was enqueued (FM_013)."""
    replace_derived: bool = True
    """A rebuild of a derived view (failure clusters, severities) replaces the table whole
    with a fresh computation; it never adds to what an earlier rebuild wrote (FM_014)."""
    ticket_outbox: bool = True
    """A ticket's change and the job that projects it commit in one transaction (a
    transactional outbox), never the change first and the job after it (FM_016)."""
    version_guard: bool = True
    """A projection is written to the read model only when its version is newer than the
    row's: a late or repeated delivery changes nothing (FM_017)."""
    conditional_write: bool = True
    """The projector's version check is part of the write, one statement the database
    decides; never a version read earlier and a write made later on its strength (FM_018)."""
    shadow_swap: bool = True
    """A rebuild of the read model fills a shadow table and swaps it in whole; it never
    empties the live table and fills it again while readers read it (FM_019)."""
    count_on_write: bool = True
    """The status counts move only when a projection writes its row, by that row's own
    change; never by replaying the event's transition, which a repeat delivers twice
    (FM_020)."""
    atomic_projection: bool = True
    """A projection writes its row and moves the counts in one transaction, its commit;
    never the row at the commit and the counts at the ack, where a crash between leaves
    the row done and the counts never moved (FM_021)."""
    full_rebuild: bool = True
    """A rebuild of the read model projects every ticket from the write model; it never
    trusts a row because its version is current, which is how a corrupt row survives a
    catch-up rebuild (FM_022)."""
    ack_after_commit: bool = True
    """A job is acknowledged only once its work is committed, never on receipt (FM_012)."""
    wait_for_write_lock: bool = True
    """A SQLite transaction takes the write lock as it begins (`BEGIN IMMEDIATE`) and waits
    for a writer that holds it (a busy timeout), so another writer is a wait, never an
    error; never a deferred transaction that fails the moment the lock is taken (FM_023)."""

    # Tunables.
    lease_s: float = 30.0
    attempts_max: int = 3
    retry_delay_s_base: float = 1.0
    retry_delay_s_max: float = 60.0
    retry_schedule_s: tuple[float, ...] = ()
    """A stated backoff instead of the doubling one: the ceiling after the first failed
    attempt, the second, ..., the last one repeating (the intent log's 10 s, 30 s, 2 min,
    10 min). Empty: `retry_delay_s_base` doubling up to `retry_delay_s_max`."""

    def __post_init__(self) -> None:
        if self.lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {self.lease_s}")
        if self.attempts_max < 1:
            raise ValueError(f"attempts_max must be at least 1, got {self.attempts_max}")
        if not 0 <= self.retry_delay_s_base <= self.retry_delay_s_max:
            raise ValueError("need 0 <= retry_delay_s_base <= retry_delay_s_max")
        if any(not 0 <= delay < float("inf") for delay in self.retry_schedule_s):
            raise ValueError(
                f"retry_schedule_s needs delays of 0 s or more, got {self.retry_schedule_s}"
            )

    def without(self, lever: str) -> "Policies":
        """These policies with one lever turned off: an FM's baseline."""
        if lever not in LEVERS:
            raise ValueError(f"unknown lever {lever!r}; levers are {', '.join(LEVERS)}")
        return replace(self, **{lever: False})

    def levers_off(self) -> tuple[str, ...]:
        return tuple(lever for lever in LEVERS if not getattr(self, lever))


LEVERS: tuple[str, ...] = tuple(f.name for f in fields(Policies) if f.type in (bool, "bool"))

GUARDED = Policies()
"""Every guard on. The default everywhere."""
