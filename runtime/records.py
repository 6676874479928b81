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


def job_from_row(row: Any, **moved: Any) -> Job:
    """A Job from its row (any row that reads by column name); `moved`: the columns the
    caller has just changed in the same transaction, with their new values (a lease's
    state, attempts, token and time)."""
    fields = {name: row[name] for name in _JOB_FIELDS}
    fields["payload"] = json.loads(fields["payload"])
    fields.update(moved)
    return Job(**fields)


_JOB_FIELDS = tuple(Job.__dataclass_fields__)
