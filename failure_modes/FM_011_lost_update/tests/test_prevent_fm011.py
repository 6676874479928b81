"""FM_011, the fix: compare-and-set on a version.

Under GUARDED a credit writes the balance back only if the row is still at the version it
read. w2 read 120 at version 0; by its commit w1 has moved the row to 170 at version 1, so
w2's write is refused (`Conflict`): its whole commit rolls back, its attempt is FAILED with
the reason, and the job is retried after a backoff. The retry reads 170 afresh and writes
200. Nothing is lost; the price is one more attempt.
"""

import dataclasses
import functools

import pytest

from failure_modes.FM_011_lost_update import scenario
from failure_modes.proof import explored_clean
from runtime import effects, invariants
from runtime.policies import GUARDED
from runtime.sim import RunResult, Scenario, Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
CONFLICT = "Conflict: account acct-1 changed since it was read (read at version 0, now 1)"


def balance(result: RunResult) -> int:
    row = result.store.one("SELECT balance FROM accounts WHERE name = ?", (scenario.WALLET,))
    return row["balance"]


def test_scripted_schedule_holds_every_invariant():
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert balance(result) == scenario.OPENING + 50 + 30
    assert result.store.one("SELECT version FROM accounts")["version"] == 2
    states = result.store.tuples("SELECT state, attempts FROM jobs ORDER BY id")
    assert [tuple(row) for row in states] == [("SUCCEEDED", 1), ("SUCCEEDED", 2)]


def test_the_stale_write_is_refused_and_the_attempt_fails_on_the_record():
    """w2's commit finds the row at version 1, not the 0 it read: refused, rolled back
    whole (no credit, no effect record), its execution FAILED with the reason, and the job
    scheduled to run again. The refusal is counted (mark `cas.conflict`)."""
    result = scenario.run(GUARDED)

    assert result.marks["cas.conflict"] == 1
    failed = result.store.one("SELECT job_id, status, error FROM executions WHERE id = 2")
    assert tuple(failed) == (2, "FAILED", CONFLICT)
    [retry] = [e for e in result.events if e.type == "job.retry_scheduled"]
    assert (retry.worker, retry.job_id, retry.execution_id) == ("w2", 2, 2)
    assert retry.detail["error"] == CONFLICT
    assert retry.detail["job_state"] == ["RUNNING", "PENDING"]
    assert retry.detail["execution_state"] == ["IN_PROGRESS", "FAILED"]
    # Nothing of the refused commit was written: execution 2 has no effect and no credit.
    assert [e.execution_id for e in effects.applied(result.store)] == [1, 3]
    assert 2 not in {e.execution_id for e in result.events if e.type == "account.credited"}


def test_the_retry_reads_afresh_and_adds_to_what_is_there():
    result = scenario.run(GUARDED)

    first, retried = [e for e in result.events if e.type == "account.credited"]
    assert (first.execution_id, first.detail["read"], first.detail["balance"]) == (
        1,
        [120, 0],
        [120, 170],
    )
    assert (retried.worker, retried.execution_id) == ("w2", 3)
    assert retried.detail["read"] == [170, 1]  # read after w1's write, not before
    assert retried.detail["balance"] == [170, 200]
    assert retried.detail["version"] == [1, 2]
    assert result.events[-1].type == "job.succeeded"


def test_a_conflict_on_the_last_attempt_ends_the_job_dead_and_the_balance_right():
    """Conflicts spend attempts. With a budget of one, w2's refused write is its last: the
    job goes DEAD with the conflict as its reason, for a person to redrive, and the wallet
    holds exactly what was credited (120 + 50). A dead job is visible and honest; a lost
    update is neither."""
    policies = dataclasses.replace(GUARDED, attempts_max=1)
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001, 50), scenario.order(1002, 30)),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=policies,
            accounts=((scenario.WALLET, scenario.OPENING),),
        ),
    )
    sim.step("w1", until="effect_applied")
    sim.step("w2", until="effect_applied")
    sim.drain("w1")
    assert sim.step("w2", until="failed") == "failed"
    result = sim.finish()

    assert result.violations == []
    assert balance(result) == 170
    dead = result.store.one("SELECT state, last_error FROM jobs WHERE id = 2")
    assert tuple(dead) == ("DEAD", CONFLICT)
    assert [e.type for e in result.events][-1] == "job.dead"


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds of three orders credited to one wallet by two workers, with every fault
    site in the mix: no violation, and stale writes were refused and retried (mark
    `cas.conflict`), so the pass is not vacuous."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["retry.scheduled"] > 0  # the refused attempts were retried
