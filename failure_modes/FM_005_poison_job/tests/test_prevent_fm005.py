"""FM_005, the fix: a retry budget ends a poison job DEAD, with every error on record.

Under GUARDED a job is attempted at most `attempts_max` (3) times between redrives. The
refund's third failure moves it to DEAD instead of scheduling a fourth attempt; the
execution of every attempt carries its error, and so does the log (two
`job.retry_scheduled` events and one `job.dead`). A dead job is not lost work: it is a job
a person has to look at. Once the cause is fixed, an operator redrives it, explicitly and
on the record, and it gets a fresh budget.
"""

import functools

import pytest

from failure_modes.FM_005_poison_job import scenario
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.effects import Effect
from runtime.errors import UsageError
from runtime.policies import GUARDED
from runtime.queue import Job
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
POISON = scenario.POISON
ERROR = "KeyError: 'order'"


def test_scripted_schedule_ends_the_poison_job_dead_after_three_attempts():
    result = scenario.run(GUARDED)

    assert result.violations == []
    leased = [e for e in result.events if e.type == "job.leased" and e.job_id == POISON]
    assert [e.detail["attempt"] for e in leased] == [1, 2, 3]  # no fourth: nothing to lease
    failures = [e for e in result.events if e.job_id == POISON and e.detail.get("error")]
    assert [(e.type, e.execution_id, e.detail["error"]) for e in failures] == [
        ("job.retry_scheduled", 1, ERROR),
        ("job.retry_scheduled", 3, ERROR),
        ("job.dead", 4, ERROR),
    ]
    assert failures[-1].detail["job_state"] == ["RUNNING", "DEAD"]
    assert failures[-1].detail["attempts"] == 3
    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = ?", (POISON,))
    assert (job["state"], job["attempts"], job["last_error"]) == ("DEAD", 3, ERROR)
    attempts = result.store.all(
        "SELECT id, status, error FROM executions WHERE job_id = ? ORDER BY id", (POISON,)
    )
    assert [tuple(row) for row in attempts] == [(n, "FAILED", ERROR) for n in (1, 3, 4)]
    assert "job.redriven" not in {e.type for e in result.events}  # never automatic
    [awarded] = effects.applied(result.store)
    assert awarded.key == "order-1001"  # the other work went on


def refund_points_fixed(job: Job) -> Effect:
    """The fix deployed: the handler also reads the old clients' field name."""
    order = job.payload.get("order", job.payload.get("order_id"))
    return Effect(sink="ledger", key=f"refund-{order}", detail={"points": -job.payload["points"]})


def test_an_operator_redrives_the_dead_job_once_the_cause_is_fixed():
    """Dead-lettered, fixed, redriven: the redrive is an event with who and why, the job gets
    a fresh budget (its next attempt counts as attempt 1), and this time it succeeds.
    A redrive is refused for a job that is not DEAD: it is a decision about a dead job,
    not a way to hurry a live one."""
    handlers = dict(scenario.HANDLERS)
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.poison_refund(),),
            handlers=handlers,
            workers=("w1",),
            policies=GUARDED,
        ),
    )
    for _ in range(GUARDED.attempts_max):
        sim.step("w1", until="failed")
        sim.advance(GUARDED.retry_delay_s_max)
    assert sim.queue.get(POISON).state == "DEAD"
    handlers["refund_points"] = refund_points_fixed  # deploy the fix
    sim.queue.redrive(POISON, reason="refund handler now reads order_id too")
    with pytest.raises(UsageError, match="only a DEAD job is redriven"):
        sim.queue.redrive(POISON, reason="twice")
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    [redriven] = [e for e in result.events if e.type == "job.redriven"]
    assert (redriven.worker, redriven.detail["reason"]) == (
        "operator",
        "refund handler now reads order_id too",
    )
    assert redriven.detail["attempts_before"] == 3
    assert redriven.detail["job_state"] == ["DEAD", "PENDING"]
    after = [e for e in result.events if e.seq > redriven.seq]
    assert [(e.type, e.detail.get("attempt")) for e in after] == [
        ("job.leased", 1),  # a fresh budget
        ("execution.started", None),
        ("effect.applied", None),
        ("execution.committed", None),
        ("job.succeeded", None),
    ]
    [refund] = effects.applied(result.store)
    assert (refund.key, refund.execution_id) == ("refund-1001", 4)
    job = sim.queue.get(POISON)
    assert (job.state, job.last_error) == ("SUCCEEDED", ERROR)  # the history stays


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with the poison refund and every fault site in the mix (crashes and pauses
    after every step, lost acks, clock jumps, failed transactions): no violation, every
    run ends, and the budget sent jobs to DEAD, so the pass is not vacuous. Guarded runs
    are as quick as any other: the budget is what lets them go quiet."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
