"""FM_009, the break: a swallowed error turns a failed attempt into a SUCCEEDED job.

Baseline = GUARDED with exactly one lever off (`failure_capture`). The receipt mailer w1
runs job 1; the mail server refuses the connection and the handler raises ConnectionError.
The error is caught and dropped: the attempt carries on with no effect, commits and acks.
The job is SUCCEEDED, no mail was sent, and nothing anywhere says an error happened. The
one durable trace is the lie itself: a SUCCEEDED job with no effect.
"""

import functools

from failure_modes.FM_009_silent_failure import scenario
from runtime import effects, invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("failure_capture")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET_ATTEMPT = [
    ("job.submitted", None),
    ("job.leased", "w1"),
    ("execution.started", "w1"),
    ("execution.committed", "w1"),  # the handler raised between these two lines
    ("job.succeeded", "w1"),
]


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_job_is_succeeded_but_no_mail_was_sent():
    result = scenario.run(BASELINE)

    [lie] = by_inv(result, "INV_004")
    assert lie.message == "job 1 is SUCCEEDED but no effect of it was ever applied"
    assert lie.evidence.jobs == (1,)
    assert lie.evidence.executions == (1,)  # w1's one attempt, the one that failed
    [succeeded] = [result.events[seq - 1] for seq in lie.evidence.events]
    assert (succeeded.type, succeeded.worker, succeeded.execution_id) == ("job.succeeded", "w1", 1)
    assert succeeded.detail["job_state"] == ["RUNNING", "SUCCEEDED"]
    assert effects.applied(result.store) == []  # the customer has no receipt


def test_the_error_left_no_trace_at_all():
    """The attempt looks exactly like one that worked, minus its effect: no FAILED
    execution, no `last_error`, no event carrying an error. So the check that every failure
    leaves a signal (INV_005) finds nothing wrong: nothing is left for it to check."""
    result = scenario.run(BASELINE)

    assert [(e.type, e.worker) for e in result.events] == QUIET_ATTEMPT
    assert not [e for e in result.events if e.detail.get("error")]
    execution = result.store.one("SELECT status, error FROM executions WHERE id = 1")
    assert (execution["status"], execution["error"]) == ("DONE", None)
    job = result.store.one("SELECT state, attempts, last_error FROM jobs WHERE id = 1")
    assert (job["state"], job["attempts"], job["last_error"]) == ("SUCCEEDED", 1, None)
    assert invariants.check(result.store, final=True, only=["INV_005"]) == []


def test_nobody_retries_it_and_the_queue_looks_perfect():
    """One attempt, SUCCEEDED, nothing pending, nothing dead: every queue metric is green.
    The worker ran again later and found nothing to do."""
    result = scenario.run(BASELINE)

    assert [e.type for e in result.events].count("job.leased") == 1
    assert "job.retry_scheduled" not in {e.type for e in result.events}
    assert result.violated() == ["INV_004"]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_lie_without_being_told_where():
    """No fault is needed: the refused connection is the mail server's doing, not the
    simulator's. Unless faults cut short the first attempt of every receipt before its
    ack, one of them is swallowed and acked (934 of the first 1,000 seeds): the first seed
    finds it."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_004" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: one receipt, one worker, no fault. w1 leases it,
    starts it, the handler raises and the error is swallowed, w1 commits nothing and
    acks: five steps, and the lie is reported at the ack. No decision matters: the
    plainest schedule fails, because the catch-all is in the code, not in the schedule."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_004")
    assert shrunk.steps == 5, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_004")
    assert [describe(c) for c in result.decisions() if c.value] == []
    assert [str(v) for v in result.violations] == [
        "INV_004: job 1 is SUCCEEDED but no effect of it was ever applied "
        "(jobs [1], executions [1], events [5])"
    ]
    assert [(e.type, e.worker) for e in result.events] == QUIET_ATTEMPT
