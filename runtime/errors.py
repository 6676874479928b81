"""One error hierarchy, so callers catch what they mean and nothing else.

Prior art: Hypothesis keeps every public error in one module with a docstring saying who
raises it. A person's mistake (bad flag, unknown FM, foreign database) is a `UsageError`
and the CLI turns it into one line on stderr and exit 2.
"""


class LabError(Exception):
    """Root of every error the lab raises on purpose."""


class UsageError(LabError):
    """Raised for input a person can fix: an unknown FM, a bad flag, a malformed payload."""


class DatabaseError(UsageError):
    """Raised by runtime.store when a database file is missing, corrupt, foreign or newer."""


class StoreUnavailable(LabError):
    """Raised by runtime.store when a transaction cannot begin or commit ("database is
    locked", an I/O error). Nothing of the transaction was written: the caller may retry.

    `busy`: the store refused because another writer held its lock (SQLite's SQLITE_BUSY),
    contention a store that waits for the lock never reports (FM_023).
    """

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


class IllegalTransition(LabError):
    """Raised by runtime.states when code asks for a transition the state machine forbids.

    Nothing is written: the check runs before the UPDATE, inside the same transaction.
    """


class LeaseLost(LabError):
    """Raised by runtime.queue when a worker writes with a lease it no longer holds.

    The lease expired, or another worker was granted a newer fencing token. The write is
    refused and a `lease.lost` event records the refusal.
    """


class Conflict(LabError):
    """Raised by runtime.accounts when a compare-and-set finds the row changed since it was
    read. Nothing is written: the whole transaction rolls back, and the attempt is failed
    and retried, reading afresh."""


class Unavailable(LabError):
    """Raised by runtime.queue when a dependency refuses a call (it is down, or overloaded;
    runtime.dependency). Nothing was applied: the attempt fails and is retried."""


class UnknownJob(UsageError):
    """Raised by runtime.queue for a job id that does not exist."""


class StepBudgetExceeded(LabError):
    """Raised by runtime.sim when a scripted worker is still busy after `steps_max` steps."""
