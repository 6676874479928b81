"""The failures on record, as the derived views read them: one row per failure event.

A failure is an event that failed an attempt: `job.retry_scheduled` (FAILED, with
attempts left) or `job.dead` (DEAD, the budget spent). Its type is the type of the intent
the job follows from, or the job's kind for a job that follows no intent.
"""

from dataclasses import dataclass

from runtime.store import Store

FAILED, DEAD = "FAILED", "DEAD"

_FAILURES = """
SELECT v.seq, v.at, v.type, v.job_id,
       coalesce(json_extract(j.payload, '$.type'), j.kind) AS failure_type,
       json_extract(v.detail, '$.attempts') AS attempts,
       json_extract(v.detail, '$.error') AS error
  FROM events v JOIN jobs j ON j.id = v.job_id
 WHERE v.type IN ('job.retry_scheduled', 'job.dead') AND v.seq <= ?
 ORDER BY v.seq
"""


@dataclass(frozen=True)
class Failure:
    seq: int
    at: float
    outcome: str
    """FAILED (retries left) or DEAD (the budget spent)."""
    type: str
    job: int
    attempt: int
    error: str


def failures(store: Store, upto_seq: int | None = None) -> list[Failure]:
    """The failures on record, or those logged up to event `upto_seq`."""
    upto = 2**63 - 1 if upto_seq is None else upto_seq
    return [
        Failure(
            seq=row["seq"],
            at=row["at"],
            outcome=DEAD if row["type"] == "job.dead" else FAILED,
            type=row["failure_type"],
            job=row["job_id"],
            attempt=row["attempts"] or 0,
            error=row["error"] or "",
        )
        for row in store.all(_FAILURES, (upto,))
    ]
