"""FM_015, the fix: a dead job keeps the error that killed it.

Under GUARDED, when the budget runs out the queue writes the last attempt's own error as
the job's `last_error` and on its `job.dead` event: `KeyError: 'order'` for the poison
refund, `lease of w1 expired at ...; attempts spent` when the reaper ends an attempt that
never reported back. The dead letter's headline is the cause, the earlier attempts' errors
stay on their executions and retry events as history, and the fact that the budget ran out
is told by the event's type and its `attempts`, never instead of the cause.
"""

import functools

import pytest

from failure_modes.FM_005_poison_job.scenario import poison_refund
from failure_modes.FM_015_cause_of_death_overwritten import scenario
from failure_modes.proof import explored_clean
from runtime import effects, invariants
from runtime.effects import Effect
from runtime.policies import GUARDED
from runtime.queue import Job
from runtime.sim import RunResult, Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
POISON = scenario.POISON
CAUSE = "KeyError: 'order'"


def errors_of(result: RunResult, job_id: int):
    """Every event of the job that carries an error, as (type, execution, error)."""
    return [
        (e.type, e.execution_id, e.detail["error"])
        for e in result.events
        if e.job_id == job_id and e.detail.get("error")
    ]


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []


def test_the_dead_letter_names_the_cause_and_every_attempt_keeps_its_own():
    """The refund is DEAD after three attempts, as under the baseline; what changed is the
    record. `last_error` and the `job.dead` event say `KeyError: 'order'`, the error of
    the attempt that ended it. The budget's verdict is still there, in the event's type
    and its `attempts` (3): added to the cause, not written over it."""
    result = scenario.run(GUARDED)

    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = ?", (POISON,))
    assert (job["state"], job["attempts"], job["last_error"]) == ("DEAD", 3, CAUSE)
    assert errors_of(result, POISON) == [
        ("job.retry_scheduled", 1, CAUSE),
        ("job.retry_scheduled", 3, CAUSE),
        ("job.dead", 4, CAUSE),
    ]
    [dead] = [e for e in result.events if e.type == "job.dead"]
    assert (dead.worker, dead.detail["attempts"]) == ("w1", 3)
    attempts = result.store.tuples(
        "SELECT id, status, error FROM executions WHERE job_id = ? ORDER BY id", (POISON,)
    )
    assert [tuple(row) for row in attempts] == [(n, "FAILED", CAUSE) for n in (1, 3, 4)]


def test_the_reaper_names_the_lost_lease_as_the_cause():
    """Explored seed 3: the refund's third attempt is lost to a failed transaction right
    after its lease, and the reaper ends it. The dead letter says what happened to that
    attempt, "lease of w1 expired at 38.273; attempts spent", not "KeyError". That is the
    honest headline: the last attempt did not die of the KeyError, it never got to run.
    The KeyErrors of attempts 1 and 2 are in the history, which is why a dead letter keeps
    both: the headline says how the job ended, the history says what it kept hitting."""
    result = scenario.run(GUARDED, seed=3)

    assert result.violations == []
    ended = "lease of w1 expired at 38.273; attempts spent"
    assert errors_of(result, POISON) == [
        ("job.retry_scheduled", 1, CAUSE),
        ("job.retry_scheduled", 4, CAUSE),
        ("job.dead", 5, ended),
    ]
    job = result.store.one("SELECT state, last_error FROM jobs WHERE id = ?", (POISON,))
    assert tuple(job) == ("DEAD", ended)


def test_two_dead_letters_now_tell_two_different_stories():
    """Explored seed 5, the one where the baseline's two dead letters read alike: the
    refund died of its KeyError (fix the code), order 1002 of lost leases after its
    points were already awarded (nothing to fix). Triage can tell them apart from the
    dead letters alone."""
    result = scenario.run(GUARDED, seed=5)

    assert result.violations == []
    dead = result.store.tuples("SELECT id, last_error FROM jobs WHERE state = 'DEAD' ORDER BY id")
    assert [tuple(row) for row in dead] == [
        (POISON, CAUSE),
        (3, "lease of w2 expired at 93.443; attempts spent"),
    ]


def refund_points_fixed(job: Job) -> Effect:
    """The fix deployed: the handler also reads the old clients' field name."""
    order = job.payload.get("order", job.payload.get("order_id"))
    return Effect(sink="ledger", key=f"refund-{order}", detail={"points": -job.payload["points"]})


def test_a_redrive_after_the_fix_succeeds_and_the_history_keeps_the_cause():
    """The operator reads the dead letter, sees `KeyError: 'order'`, fixes the handler
    and redrives the refund, citing the cause in the reason. The job gets a fresh budget
    and succeeds at once. Nothing of its past is rewritten: its `job.dead` event and its
    three failed executions still say KeyError, and `last_error` keeps the last error it
    ever had (the SUCCEEDED state says it is history)."""
    handlers = dict(scenario.HANDLERS)
    sim = Simulation(
        0,
        Scenario(
            jobs=(poison_refund(),),
            handlers=handlers,
            workers=("w1",),
            policies=GUARDED,
        ),
    )
    for _ in range(GUARDED.attempts_max):
        sim.step("w1", until="failed")
        sim.advance(GUARDED.retry_delay_s_max)
    dead = sim.queue.get(POISON)
    assert (dead.state, dead.last_error) == ("DEAD", CAUSE)  # what the operator reads
    handlers["refund_points"] = refund_points_fixed  # deploy the fix
    sim.queue.redrive(POISON, reason=f"{dead.last_error}: refund handler now reads order_id")
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    [redriven] = [e for e in result.events if e.type == "job.redriven"]
    assert redriven.detail["reason"] == "KeyError: 'order': refund handler now reads order_id"
    assert errors_of(result, POISON) == [
        ("job.retry_scheduled", 1, CAUSE),
        ("job.retry_scheduled", 2, CAUSE),
        ("job.dead", 3, CAUSE),  # the earlier death, with its cause, stays in the log
    ]
    after = [e.type for e in result.events if e.seq > redriven.seq]
    assert after == [
        "job.leased",
        "execution.started",
        "effect.applied",
        "execution.committed",
        "job.succeeded",
    ]
    [refund] = effects.applied(result.store)
    assert (refund.key, refund.execution_id) == ("refund-1001", 4)
    attempts = result.store.tuples(
        "SELECT id, status, error FROM executions WHERE job_id = ? ORDER BY id", (POISON,)
    )
    assert [tuple(row) for row in attempts] == [
        (1, "FAILED", CAUSE),
        (2, "FAILED", CAUSE),
        (3, "FAILED", CAUSE),
        (4, "DONE", None),
    ]
    job = sim.queue.get(POISON)
    assert (job.state, job.last_error) == ("SUCCEEDED", CAUSE)


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with the poison refund and every fault site in the mix: no violation, and
    jobs went DEAD (mark `job.dead`), so every run wrote dead letters that had to carry
    their cause. In each chunk some deaths come from a worker's failure and some from the
    reaper's sweep (about 210 and 65 per 250 seeds), so both paths are checked."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
