"""The two state machines of the runtime, as data.

A job moves PENDING -> RUNNING -> SUCCEEDED | DEAD, and back to PENDING when an attempt
fails with budget left, when the reaper rescues an expired lease, or when an operator
redrives a dead job. An execution (one attempt) moves LEASED -> IN_PROGRESS -> COMMITTED
-> DONE, or ends ABORTED (lease lost) or FAILED (the handler raised).

The store checks every write against these tables before it writes; the INV_003 checker
replays the event log against them again. docs/02_state_model.md draws the same tables and
a test keeps the drawing honest.
"""

from runtime.errors import IllegalTransition

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
DEAD = "DEAD"
JOB_STATES = (PENDING, RUNNING, SUCCEEDED, DEAD)
JOB_TERMINAL = frozenset({SUCCEEDED, DEAD})

LEASED = "LEASED"
IN_PROGRESS = "IN_PROGRESS"
COMMITTED = "COMMITTED"
DONE = "DONE"
ABORTED = "ABORTED"
FAILED = "FAILED"
EXECUTION_STATES = (LEASED, IN_PROGRESS, COMMITTED, DONE, ABORTED, FAILED)
EXECUTION_OPEN = frozenset({LEASED, IN_PROGRESS, COMMITTED})

# None stands for "does not exist yet".
JOB_TRANSITIONS: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, PENDING),  # submitted
        (PENDING, RUNNING),  # leased
        (RUNNING, SUCCEEDED),  # acked
        (RUNNING, PENDING),  # retry scheduled, or lease rescued by the reaper
        (RUNNING, DEAD),  # attempts spent
        (DEAD, PENDING),  # redriven by an operator
    }
)

EXECUTION_TRANSITIONS: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, LEASED),
        (LEASED, IN_PROGRESS),
        (IN_PROGRESS, COMMITTED),
        (COMMITTED, DONE),
        (LEASED, FAILED),
        (IN_PROGRESS, FAILED),
        (LEASED, ABORTED),
        (IN_PROGRESS, ABORTED),
        (COMMITTED, ABORTED),
    }
)


def require_job_transition(before: str | None, after: str) -> None:
    if (before, after) not in JOB_TRANSITIONS:
        raise IllegalTransition(f"job cannot move {before} -> {after}")


def require_execution_transition(before: str | None, after: str) -> None:
    if (before, after) not in EXECUTION_TRANSITIONS:
        raise IllegalTransition(f"execution cannot move {before} -> {after}")
