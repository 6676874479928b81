"""What the queue hands out and reads back: a job as its row says, a lease, counts.

Plain frozen values, so a worker, a test or a checker can hold one without holding the
store it came from.
"""

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str | None
    state: str
    attempts: int
    max_attempts: int
    run_at: float
    fencing_token: int
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Lease:
    """What a worker holds while it runs one attempt of one job."""

    job_id: int
    execution_id: int
    worker: str
    fencing_token: int
    attempt: int
    expires_at: float
    job: Job | None = field(default=None, compare=False, repr=False)
    """The job as this lease took it (RUNNING, at this attempt, under this token): what its
    handler is given, with no second read. A lease made by hand carries none."""


@dataclass(frozen=True)
class Statistics:
    pending: int
    running: int
    succeeded: int
    dead: int
    oldest_pending_age_s: float


def job_from_row(row: Any) -> Job:
    """A Job from its row (any row that reads by column name)."""
    return Job(
        id=row["id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        idempotency_key=row["idempotency_key"],
        state=row["state"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        run_at=row["run_at"],
        fencing_token=row["fencing_token"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def leased_job(row: Any, attempt: int, token: int, now: float) -> Job:
    """The Job a lease takes, from its PENDING row: RUNNING now, at `attempt`, under
    `token`, as the lease's own UPDATE leaves the row."""
    return Job(
        id=row["id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        idempotency_key=row["idempotency_key"],
        state="RUNNING",
        attempts=attempt,
        max_attempts=row["max_attempts"],
        run_at=row["run_at"],
        fencing_token=token,
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=now,
    )
