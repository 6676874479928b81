"""What a checker reports: a violation of a named invariant, with its evidence (the jobs,
executions and event seqs that prove it, so a reader can go straight to the rows)."""

from dataclasses import dataclass, field
from typing import Any

from runtime.monitor import Monitor


@dataclass(frozen=True)
class Evidence:
    jobs: tuple[int, ...] = ()
    executions: tuple[int, ...] = ()
    events: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "jobs": list(self.jobs),
            "executions": list(self.executions),
            "events": list(self.events),
        }


@dataclass(frozen=True)
class Violation:
    inv: str
    message: str
    evidence: Evidence = field(default_factory=Evidence)

    def __str__(self) -> str:
        e = self.evidence
        return (
            f"{self.inv}: {self.message} (jobs {list(e.jobs)}, executions "
            f"{list(e.executions)}, events {list(e.events)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"inv": self.inv, "message": self.message, "evidence": self.evidence.as_dict()}


def evidence_for(m: Monitor, what: str, subject: int | None, seq: int | None) -> Evidence:
    """A job's (or an execution's) evidence: the job, its executions, and the event `seq`."""
    seqs = () if seq is None else (seq,)
    if what == "job":
        executions = tuple(x["id"] for x in m.executions_of(subject))
        return Evidence(() if subject is None else (subject,), executions, seqs)
    execution = m.executions.get(subject)
    jobs = () if execution is None else (execution["job_id"],)
    return Evidence(jobs, () if subject is None else (subject,), seqs)
