"""FM_015, the break: a dead job's record says "retries exhausted", not what killed it.

Baseline = GUARDED with exactly one lever off (`cause_of_death`). FM_005's poison refund
fails with KeyError three times and the retry budget sends it to DEAD: that part works.
But at DEAD the queue writes a summary, "retries exhausted after 3 attempts", as the job's
`last_error` and on its `job.dead` event. The dead letter, the one record a person reads
when deciding what to do with a dead job, names no cause. The cause is not destroyed: it
is still on each execution and on each `job.retry_scheduled`. It is just not where anyone
looks, and INV_005 says so: the event that ended the last attempt does not carry its error.
"""

import functools

from failure_modes.FM_015_cause_of_death_overwritten import scenario
from runtime import effects, invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("cause_of_death")
BUILD = functools.partial(scenario.scenario, BASELINE)
POISON = scenario.POISON
CAUSE = "KeyError: 'order'"
SUMMARY = "retries exhausted after 3 attempts"
RECOVER_CAUSES = """
    SELECT j.id, j.last_error, x.id, x.status, x.error
      FROM jobs j
      JOIN executions x ON x.id = (SELECT max(id) FROM executions WHERE job_id = j.id)
     WHERE j.state = 'DEAD'
     ORDER BY j.id
"""
"""The recovery query: for each dead job, what its record says and what its last attempt
actually died of (the spec's Prevention / recovery section)."""


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def dead_letters(result: RunResult):
    return [e for e in result.events if e.type == "job.dead"]


def test_the_dead_letter_names_no_cause():
    """Execution 4, the refund's third attempt, ended FAILED with KeyError; the `job.dead`
    that ended it says only that the budget ran out. INV_005 is the only invariant broken:
    the budget did its job, the refund is DEAD after exactly three attempts, and order 1001
    was awarded. What is wrong is the record."""
    result = scenario.run(BASELINE)

    [unsaid] = by_inv(result, "INV_005")
    assert unsaid.message == (
        f'execution 4 of job 1 ended FAILED with "{CAUSE}", but the job.dead that ended it '
        f"says '{SUMMARY}'"
    )
    assert unsaid.evidence.jobs == (POISON,)
    assert unsaid.evidence.executions == (4,)  # execution 2 is w2's order
    [dead] = [result.events[seq - 1] for seq in unsaid.evidence.events]
    assert (dead.seq, dead.type, dead.worker, dead.execution_id) == (16, "job.dead", "w1", 4)
    assert dead.detail["error"] == SUMMARY
    assert dead.detail["job_state"] == ["RUNNING", "DEAD"]
    assert dead.detail["execution_state"] == ["IN_PROGRESS", "FAILED"]
    assert result.violated() == ["INV_005"]
    [awarded] = effects.applied(result.store)
    assert awarded.key == "order-1001"


def test_the_cause_is_on_the_attempts_but_not_where_a_person_looks():
    """The job row and its `job.dead` event, the dead letter, say only the summary. Every
    execution row still carries the KeyError, and so do the two `job.retry_scheduled`
    events: the cause is recoverable by digging, which is exactly what the summary makes
    everyone do. The summary itself is in an event, so the "last error appears in no
    event" half of INV_005 holds: the lie is consistent, just empty."""
    result = scenario.run(BASELINE)

    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = ?", (POISON,))
    assert (job["state"], job["attempts"], job["last_error"]) == ("DEAD", 3, SUMMARY)
    attempts = result.store.tuples(
        "SELECT id, status, error FROM executions WHERE job_id = ? ORDER BY id", (POISON,)
    )
    assert [tuple(row) for row in attempts] == [(n, "FAILED", CAUSE) for n in (1, 3, 4)]
    errors = [e for e in result.events if e.job_id == POISON and e.detail.get("error")]
    assert [(e.seq, e.type, e.execution_id, e.detail["error"]) for e in errors] == [
        (5, "job.retry_scheduled", 1, CAUSE),
        (13, "job.retry_scheduled", 3, CAUSE),
        (16, "job.dead", 4, SUMMARY),  # the one record that decides what happens next
    ]
    # Recovery reads the cause back from the last execution, not from the dead letter.
    recovered = result.store.tuples(RECOVER_CAUSES)
    assert [tuple(row) for row in recovered] == [(POISON, SUMMARY, 4, "FAILED", CAUSE)]


def test_the_final_database_check_reports_it():
    """Nothing repairs it later, and the log is append-only: the check of the database alone
    still reports the dead letter, so `fmlab check --db lab.db` lists every dead job whose
    record lost its cause, which is also the list of causes to recover."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    assert [v.inv for v in final] == ["INV_005"]
    assert [str(v) for v in final] == [str(v) for v in by_inv(result, "INV_005")]


def test_the_reaper_overwrites_a_lost_lease_just_the_same():
    """Explored seed 3: the refund's third attempt never reports back (its worker hits a
    failed transaction right after the lease), so the reaper ends it when the lease runs
    out. The execution is ABORTED with "lease of w1 expired at 38.273"; the reaper's
    `job.dead` would say that, plus "attempts spent". Without the lever it says the same
    summary as a KeyError death: a crash and a bug read alike."""
    result = scenario.run(BASELINE, seed=3)

    [unsaid] = by_inv(result, "INV_005")
    assert unsaid.message == (
        "execution 5 of job 1 ended ABORTED with 'lease of w1 expired at 38.273', but the "
        f"job.dead that ended it says '{SUMMARY}'"
    )
    assert (unsaid.evidence.jobs, unsaid.evidence.executions) == ((POISON,), (5,))
    [dead] = [result.events[seq - 1] for seq in unsaid.evidence.events]
    assert (dead.seq, dead.type, dead.worker) == (22, "job.dead", "reaper")
    assert dead.detail["error"] == SUMMARY
    assert dead.detail["execution_state"] == ["LEASED", "ABORTED"]
    execution = result.store.one("SELECT status, error FROM executions WHERE id = 5")
    assert tuple(execution) == ("ABORTED", "lease of w1 expired at 38.273")


def test_two_dead_letters_that_read_alike_died_of_different_things():
    """Explored seed 5 ends with two dead jobs. The refund died of its KeyError and needs a
    code fix. Order 1002's points were awarded on its first attempt, but that attempt's ack
    failed, and so did its two retries' (a failed transaction, a pause past the lease), so
    the reaper killed it for lost leases; a redrive would find its effect already applied.
    Their dead letters are word for word the same. Whoever triages the dead-letter queue
    cannot tell "fix the code" from "nothing to fix" without opening every attempt."""
    result = scenario.run(BASELINE, seed=5)

    assert [(e.job_id, e.worker, e.detail["error"]) for e in dead_letters(result)] == [
        (POISON, "w1", SUMMARY),
        (3, "reaper", SUMMARY),
    ]
    assert [(v.evidence.jobs, v.evidence.executions) for v in by_inv(result, "INV_005")] == [
        ((POISON,), (5,)),
        ((3,), (7,)),
    ]
    recovered = result.store.tuples(RECOVER_CAUSES)
    assert [tuple(row) for row in recovered] == [
        (POISON, SUMMARY, 5, "FAILED", CAUSE),
        (3, SUMMARY, 7, "ABORTED", "lease of w2 expired at 93.443"),
    ]
    assert "order-1002" in {e.key for e in effects.applied(result.store)}  # its work is done


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_missing_cause_without_being_told_where():
    """No fault is needed: the poison refund spends its budget in every explored run, so
    every run has a dead letter, and without the lever every dead letter is a summary.
    The first seed finds it (as do all of the first 2,000)."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_005" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: the refund alone, on one worker, with no fault and no
    backoff delay. w1 leases, starts and fails it three times; the third failure is the
    `job.dead` that says "retries exhausted": nine steps. No decision matters; the plainest
    schedule fails, because every death is recorded the same way."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_005")
    assert shrunk.steps == 9, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_005")
    assert [describe(c) for c in result.decisions() if c.value] == []
    assert [str(v) for v in result.violations] == [
        f'INV_005: execution 3 of job 1 ended FAILED with "{CAUSE}", but the job.dead that '
        f"ended it says '{SUMMARY}' (jobs [1], executions [3], events [10])"
    ]
    assert [e.type for e in result.events] == [
        "job.submitted",
        *["job.leased", "execution.started", "job.retry_scheduled"] * 2,
        *["job.leased", "execution.started", "job.dead"],
    ]
