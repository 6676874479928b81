"""FM_002, the fix: every call to the provider carries the charge's idempotency key.

Under GUARDED, w1's call carries `charge-1001`; the provider charges the card and keeps
the key. When w2's retry calls again with the same key, the provider answers with the
first charge instead of making a second (`effect.absorbed`), and w2's commit confirms it.
The key is derived from the order, not from the attempt, so every retry, by any worker,
after a crash or a lost answer, sends the same one. What the key cannot do is shown last:
a charge made by a job's final attempt is confirmed by nobody.
"""

import dataclasses
import functools

import pytest

from failure_modes.FM_002_external_effect_replayed import scenario
from failure_modes.proof import explored_clean
from runtime import effects, states
from runtime.faults import FaultMix
from runtime.policies import GUARDED
from runtime.sim import Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
LOST_ANSWERS = FaultMix(sites=("external_timeout",), activation=1.0, firing=0.3)
"""Only the provider's answers lost on the way back, often."""


def test_scripted_schedule_holds_and_the_provider_answers_the_repeat_with_the_first_charge():
    result = scenario.run(GUARDED)

    assert result.violations == []
    [charge] = effects.applied(result.store)
    assert (charge.key, charge.execution_id) == ("charge-1001", 1)  # w1's call, the only one
    [absorbed] = [e for e in result.events if e.type == "effect.absorbed"]
    assert (absorbed.worker, absorbed.execution_id) == ("w2", 2)
    assert (absorbed.detail["key"], absorbed.detail["first_execution"]) == ("charge-1001", 1)
    committed = [e.execution_id for e in result.events if e.type == "execution.committed"]
    assert committed == [2]  # w2's commit is what confirms w1's charge
    assert result.events[-1].type == "job.succeeded"


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_key_was_put_to_work(chunk):
    """500 seeds with every fault site in the mix (crashes and pauses after every step,
    lost acks, lost answers from the provider, duplicate submits, clock jumps, failed
    transactions): no order charged twice, every charge confirmed, and the provider
    absorbed repeated calls, so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["fault.external_timeout"] > 0, "no provider answer was ever lost"


def test_a_lost_answer_is_absorbed_when_the_retry_calls_again():
    """The provider charged, its answer was lost, the attempt failed with a TimeoutError and
    was retried; the retry's call carried the same key and got the first charge back. Each
    order is charged once however many answers are lost."""
    world = scenario.scenario(GUARDED, jobs=3, mix=LOST_ANSWERS)
    absorbed_after_a_timeout = 0
    for seed in range(20):
        result = Simulation(seed, world).run()
        assert result.violations == [], f"seed {seed}: {result.violations}"
        keys = [e.key for e in effects.applied(result.store)]
        assert sorted(keys) == ["charge-1001", "charge-1002", "charge-1003"], f"seed {seed}"
        timed_out = {
            e.job_id
            for e in result.events
            if e.type == "job.retry_scheduled" and e.detail["error"].startswith("TimeoutError")
        }
        absorbed_after_a_timeout += sum(
            1 for e in result.events if e.type == "effect.absorbed" and e.job_id in timed_out
        )
    assert absorbed_after_a_timeout > 10


def test_what_the_key_cannot_do_a_charge_made_by_the_last_attempt():
    """The residual risk. With one attempt, w1 charges the card and dies; the reaper finds
    the attempts spent and the job goes DEAD. No retry will ever call the provider again,
    so nothing confirms the charge: INV_002 reports it (never INV_001: the card was charged
    once). Someone must ask the provider about `charge-1001` and refund it or finish the
    order: reconciliation by key, not a guard."""
    one_attempt = dataclasses.replace(GUARDED, attempts_max=1)
    world = Scenario(jobs=(scenario.order(1001),), handlers=scenario.HANDLERS, policies=one_attempt)
    sim = Simulation(0, world)
    sim.step("w1", until="effect_applied")  # the provider charges the card
    sim.crash("w1")
    sim.advance(one_attempt.lease_s)
    assert sim.reap() == [1]  # ...and the job is dead: its only attempt is spent
    result = sim.finish()

    assert sim.queue.get(1).state == states.DEAD
    [unconfirmed] = result.violations
    assert unconfirmed.inv == "INV_002"
    assert unconfirmed.evidence.executions == (1,)
    [charged] = [result.events[seq - 1] for seq in unconfirmed.evidence.events]
    assert (charged.type, charged.detail["key"]) == ("effect.applied", "charge-1001")
