"""FM_002, the break: without an idempotency key a retry charges the card a second time.

Baseline = GUARDED with exactly one lever off (`external_idempotency`). The checkout worker
w1 asks the payment provider to charge order 1001's card, and the provider does; then w1
dies before it commits. The charge lives in the provider's system, not in our database, so
nothing of ours remembers it: the reaper rescues the expired lease, w2 runs the job again
and the provider, asked a second time with nothing to tell the calls apart, charges again.
"""

import functools

from failure_modes.FM_002_external_effect_replayed import scenario
from runtime import states
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult

BASELINE = GUARDED.without("external_idempotency")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def test_the_retry_charges_the_card_a_second_time():
    result = scenario.run(BASELINE)

    [duplicate] = by_inv(result, "INV_001")
    assert duplicate.evidence.jobs == (1,)
    assert duplicate.evidence.executions == (1, 2)  # w1's crashed attempt and w2's retry
    charges = [result.events[seq - 1] for seq in duplicate.evidence.events]
    assert [(e.type, e.worker, e.detail["key"], e.detail["external"]) for e in charges] == [
        ("effect.applied", "w1", "charge-1001", True),
        ("effect.applied", "w2", "charge-1001", True),
    ]
    assert "payments/charge-1001 was applied 2 times, by executions 1 and 2" in duplicate.message


def test_the_crashed_attempt_left_a_charge_nobody_confirmed():
    """Execution 1 charged the card and ended ABORTED. A retry could have confirmed that
    charge (its repeat absorbed by the provider, then committed); here no repeat was ever
    absorbed, so the log holds a charge that no commit of ours accounts for."""
    result = scenario.run(BASELINE)

    [orphan] = by_inv(result, "INV_002")
    assert orphan.evidence.executions == (1,)
    [charged] = [result.events[seq - 1] for seq in orphan.evidence.events]
    assert (charged.type, charged.execution_id, charged.worker) == ("effect.applied", 1, "w1")
    assert "ended ABORTED without committing it" in orphan.message
    assert "effect.absorbed" not in [e.type for e in result.events]


def test_the_queue_itself_looks_healthy():
    """The symptom is quiet: the job SUCCEEDED and no attempt failed. Only the invariants
    (or the customer's card statement) see two charges."""
    result = scenario.run(BASELINE)

    types = [e.type for e in result.events]
    assert types[-1] == "job.succeeded"
    assert "job.dead" not in types and "job.retry_scheduled" not in types
    [job] = result.store.all("SELECT state FROM jobs")
    assert job["state"] == states.SUCCEEDED
    assert result.violated() == ["INV_001", "INV_002"]


def test_the_same_run_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_double_charge_without_being_told_where_to_fail():
    """Seeded runs crash, pause, lose acks and lose the provider's answers at random. Within
    META.found_within seeds one of them charges a card twice."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_001" in summary.failing, summary.failing


def test_the_failure_shrinks_to_a_schedule_a_reader_can_follow():
    """The first failing seed, shrunk: one order, one worker. The provider charges the card,
    then something keeps the attempt from committing (here the provider's answer is lost on
    the way back, so w1 fails the attempt with a TimeoutError); the job is retried and the
    provider, called again without a key, charges again. The decisions that matter: one
    fault site switched on, and that fault firing right after w1's `effect_applied`."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    first = summary.first_failure
    shrunk = shrink(BUILD, first.case(jobs=3, workers=2), "INV_001")
    assert shrunk.steps <= 8, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_001")
    mattered = [describe(c) for c in result.decisions() if c.value]
    [fired] = [d for d in mattered if d.startswith("fault after ")]
    assert fired.startswith("fault after w1 effect_applied: "), mattered
    site = fired.rsplit(": ", 1)[1]
    assert f"switch on {site}: yes" in mattered
    assert len(mattered) <= 3, mattered
    # The timeline between the two charges: the first attempt never committed.
    charges = [e.seq for e in result.events if e.type == "effect.applied"]
    assert len(charges) == 2
    between = [e.type for e in result.events[charges[0] : charges[1] - 1]]
    assert "execution.committed" not in between, between
    assert result.violated()[0] == "INV_001"
