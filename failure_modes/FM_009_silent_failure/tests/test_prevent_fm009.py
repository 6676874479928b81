"""FM_009, the fix: a handler's error fails its attempt, and the failure becomes state.

Under GUARDED the worker never carries on past a handler that raised: it fails the attempt
through the queue. The error lands on the execution (FAILED, with the error), in the job's
`last_error` and in a `job.retry_scheduled` event, and the job waits out a backoff and runs
again. A failure that passes (the refused connection) is retried into success; one that
does not ends DEAD with its reasons. Either way, a SUCCEEDED job has done its work.
"""

import functools

import pytest

from failure_modes.FM_009_silent_failure import scenario
from failure_modes.proof import explored_clean
from runtime import effects
from runtime.effects import Effect
from runtime.policies import GUARDED
from runtime.queue import Job
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
ERROR = "ConnectionError: mail server refused the connection"


def test_scripted_schedule_retries_the_refused_mail_and_sends_it():
    result = scenario.run(GUARDED)

    assert result.violations == []
    [retry] = [e for e in result.events if e.type == "job.retry_scheduled"]
    assert (retry.worker, retry.execution_id, retry.detail["error"]) == ("w1", 1, ERROR)
    assert retry.detail["execution_state"] == ["IN_PROGRESS", "FAILED"]
    assert retry.detail["retry_at"] > retry.at  # a backoff, not a hot loop
    first = result.store.one("SELECT status, error FROM executions WHERE id = 1")
    assert (first["status"], first["error"]) == ("FAILED", ERROR)
    [mail] = effects.applied(result.store)
    assert (mail.sink, mail.key, mail.execution_id) == ("mail", "receipt-1001", 2)
    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = 1")
    assert (job["state"], job["attempts"], job["last_error"]) == ("SUCCEEDED", 2, ERROR)


def refuse_always(job: Job) -> Effect:
    raise ConnectionError(scenario.REFUSED)


def test_a_failure_that_never_passes_ends_dead_not_succeeded():
    """The mail server stays down. Each attempt fails on the record, the budget runs out,
    and the job is DEAD with three errors: loud, and waiting for a person, instead of a
    SUCCEEDED job with no mail behind it."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.receipt(1001),),
            handlers={"send_receipt": refuse_always},
            workers=("w1",),
            policies=GUARDED,
        ),
    )
    for _ in range(GUARDED.attempts_max):
        sim.drain("w1")
        sim.advance(GUARDED.retry_delay_s_max)
    result = sim.finish()

    assert result.violations == []
    errors = [(e.type, e.detail["error"]) for e in result.events if e.detail.get("error")]
    assert errors == [("job.retry_scheduled", ERROR)] * 2 + [("job.dead", ERROR)]
    assert sim.queue.get(1).state == "DEAD"
    assert effects.applied(result.store) == []


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, clock jumps, failed transactions), every receipt refused on its first
    attempt: no violation, and failures were captured and retried, so the pass is not
    vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
