"""INV_013: a busy database is waited for, never reported: no operation is refused
because another writer held the lock."""

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.store import Event

# --- INV_013 -------------------------------------------------------------------------

REFUSED = "store.refused"


def fold_refusals(m: Monitor, event: Event) -> None:
    """Each refusal the runtime recorded (runtime.queue.Queue.report_refusal) is one
    violation: the work it was part of stopped because the lock was held a moment, by a
    writer that was about to let it go."""
    if event.type != REFUSED or not event.detail.get("busy"):
        return
    where = "" if event.job_id is None else f" on job {event.job_id}"
    m.found_in_log["INV_013"].append(
        Violation(
            "INV_013",
            f"{event.worker} was refused{where} because another writer held the database's"
            f" lock, and did not wait for it: {event.detail['error']}",
            Evidence(
                () if event.job_id is None else (event.job_id,),
                () if event.execution_id is None else (event.execution_id,),
                (event.seq,),
            ),
        )
    )


def check_contention_waited(m: Monitor, final: bool) -> list[Violation]:
    """INV_013: a busy database is waited for, never reported as an error."""
    return list(m.found_in_log.get("INV_013", ()))
