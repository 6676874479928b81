"""FM_006, the break: a batch fails together, and without jitter it retries together.

Baseline = GUARDED with exactly one lever off (`backoff_jitter`). The receipt mailer sends a
batch of 12 receipts while the mail provider is down (until 0.9 s). All 12 fail within a few
milliseconds, and every one of them computes the same backoff: 1 s after its failure. So all
12 are due again within a few milliseconds of each other, just after the provider is back,
and it can serve only 2 mails in any 50 ms. It serves 2 and refuses 10 as overloaded; those
10 fail together again, are due again together 2 s later, and so on, wave after wave, each
one a burst the provider said it cannot take. Every receipt is sent in the end, and nothing
is lost or sent twice: the damage is load, and time. INV_009 sees the load in our own log.
"""

import functools

import pytest

from failure_modes.FM_006_retry_storm import scenario
from runtime import invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("backoff_jitter")
BUILD = functools.partial(scenario.scenario, BASELINE)
MAIL = scenario.MAIL
DOWN = "mail is down until 0.900"
OVERLOADED = "mail is overloaded: 2 calls served in the last 0.05 s"


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def calls(result: RunResult, attempt: int | None = None):
    """The calls to the mail provider, in order (of one attempt number when given)."""
    called = [e for e in result.events if e.type == "dependency.called"]
    if attempt is None:
        return called
    return [e for e in called if e.detail["attempt"] == attempt]


def test_the_whole_batch_fails_together_and_falls_due_again_together():
    """The outage fails every first attempt, 12 calls in 6 ms. Without jitter each failure
    schedules its retry exactly one base delay (1 s) later, so the 12 retries fall due
    within the same 6 ms: the batch stays a batch."""
    result = scenario.run(BASELINE)

    first = calls(result, attempt=1)
    assert len(first) == scenario.BATCH
    assert {e.detail["answer"] for e in first} == {DOWN}
    scheduled = [
        e for e in result.events if e.type == "job.retry_scheduled" and e.detail["attempts"] == 1
    ]
    assert len(scheduled) == scenario.BATCH
    delays = {round(e.detail["retry_at"] - e.at, 3) for e in scheduled}
    assert delays == {BASELINE.retry_delay_s_base}  # the ceiling itself, for everyone
    due = [e.detail["retry_at"] for e in scheduled]
    assert max(due) - min(due) <= 0.01  # one instant, give or take the batch's own spread
    assert min(due) > MAIL.down[1]  # and just after the provider is back


def test_inv_009_reports_the_first_wave_as_it_arrives():
    """The bound is 8 retries in any 50 ms. The ninth retry of the first wave breaks it,
    and the checker names the window, the jobs, their executions and the calls; as the
    wave grows to 12 it is reported again for 10, 11 and 12."""
    result = scenario.run(BASELINE)

    reported = by_inv(result, "INV_009")
    assert [int(v.message.split()[0]) for v in reported] == [9, 10, 11, 12]
    ninth = reported[0]
    assert ninth.message == (
        "9 retries reached mail within 0.05 s (from 1.004 to 1.011); it states at most 8"
    )
    assert ninth.evidence.jobs == tuple(range(1, 10))
    assert ninth.evidence.executions == tuple(range(13, 22))  # each job's second attempt
    assert ninth.evidence.events == (1, 70, 72, 74, 76, 90, 92, 94, 96, 106)
    declared, *retried = [result.events[seq - 1] for seq in ninth.evidence.events]
    assert declared.type == "dependency.declared"
    assert (declared.detail["retries_max"], declared.detail["window_s"]) == (8, 0.05)
    assert {e.type for e in retried} == {"dependency.called"}
    assert {e.detail["attempt"] for e in retried} == {2}
    assert [e.job_id for e in retried] == list(range(1, 10))
    arrived = [e.at for e in retried]
    assert max(arrived) - min(arrived) < MAIL.window_s  # about the same instant
    assert result.violated() == ["INV_009"]  # nothing else: no receipt lost or sent twice


def test_the_provider_serves_two_of_each_wave_and_the_rest_retry_together_again():
    """Wave n is the batch's n-th attempt. Each wave arrives inside one 50 ms window, the
    provider serves 2 and refuses the rest as overloaded, and the refused retry together
    after twice the previous delay: waves of 12, 10, 8, 6, 4 and 2 at 1, 3, 7, 15, 31
    and 63 s."""
    result = scenario.run(BASELINE)

    waves = [calls(result, attempt=n) for n in range(2, 8)]
    assert [len(wave) for wave in waves] == [12, 10, 8, 6, 4, 2]
    for wave in waves:
        answers = [e.detail["answer"] for e in wave]
        assert answers.count("served") == 2
        assert set(answers) - {"served"} <= {OVERLOADED}
        assert wave[-1].at - wave[0].at < MAIL.window_s
    assert [round(wave[0].at) for wave in waves] == [1, 3, 7, 15, 31, 63]
    assert calls(result, attempt=8) == []


def test_the_storm_costs_calls_and_a_minute_but_every_receipt_goes_out():
    """Totals of the scripted run: 54 calls for 12 receipts (4.5 per receipt), of which 12
    failed in the outage and 30 were refused as overloaded after it was over; the last
    receipt went out at 63 s, 62 s after the provider was back. Every job SUCCEEDED, on
    its second to seventh attempt."""
    result = scenario.run(BASELINE)

    answers = [e.detail["answer"] for e in calls(result)]
    assert len(answers) == 54
    assert answers.count("served") == 12
    assert answers.count(DOWN) == 12
    assert answers.count(OVERLOADED) == 30
    assert result.marks["dependency.refused"] == 42
    last_sent = max(e.at for e in calls(result) if e.detail["answer"] == "served")
    assert round(last_sent, 3) == 63.025
    jobs = result.store.tuples("SELECT state, attempts FROM jobs ORDER BY id")
    assert [tuple(row) for row in jobs] == [
        ("SUCCEEDED", attempts) for attempts in (2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
    ]


def test_the_final_check_of_the_database_reports_the_densest_window_once():
    """Step by step, INV_009 grows with the burst; the final check of the database alone
    names the densest window once: all 12 retries of the first wave, in 8 ms."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [
        "12 retries reached mail within 0.05 s (from 1.004 to 1.012); it states at most 8"
    ]
    assert final[0].message == by_inv(result, "INV_009")[-1].message
    assert final[0].evidence.jobs == tuple(range(1, 13))


def test_the_same_run_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_storm_on_the_first_seed():
    """Twelve receipts, four workers, steps of 0 or 1 ms and every fault site but pauses
    and clock steps: a batch that fails in the outage retries together whatever else
    happens, so the first seed already breaks the bound."""
    summary = explore(
        BUILD, range(scenario.META.found_within), jobs=scenario.BATCH, workers=scenario.WORKERS
    )
    assert "INV_009" in summary.failing, summary.failing


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_nine_receipts_one_worker_and_no_decision():
    """Shrunk: nine receipts (one more than the bound), one worker, 58 steps, no fault and
    no decision at all: the plainest schedule fails. With steps that take no time the one
    worker fails all nine first attempts at 0.000, each backs off exactly 1 s, and all nine
    retries reach the provider at 1.000. No luck is involved: the formula is the bug."""
    world = (scenario.BATCH, scenario.WORKERS)
    summary = explore(BUILD, range(scenario.META.found_within), jobs=world[0], workers=world[1])
    shrunk = shrink(BUILD, summary.first_failure.case(*world), "INV_009")
    assert (shrunk.case.jobs, shrunk.case.workers) == (MAIL.retries_max + 1, 1)
    assert shrunk.steps == 58, shrunk
    result = replay(BUILD, shrunk.case, stop_on="INV_009")
    assert [describe(c) for c in result.decisions() if c.value] == []
    assert not [e for e in result.events if e.type.startswith("fault.")]
    assert {e.at for e in calls(result, attempt=1)} == {0.0}
    assert {e.at for e in calls(result, attempt=2)} == {1.0}
    [storm] = result.violations
    assert storm.message == (
        "9 retries reached mail within 0.05 s (from 1.000 to 1.000); it states at most 8"
    )
