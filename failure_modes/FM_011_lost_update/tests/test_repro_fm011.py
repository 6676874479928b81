"""FM_011, the break: two read-modify-writes of one balance, and the second erases the first.

Baseline = GUARDED with exactly one lever off (`compare_and_set`). The customer's wallet
holds 120 points. w1 takes order 1001 (+50) and reads 120; w2 takes order 1002 (+30) and
reads 120 too. w1 writes 120 + 50 = 170; w2 writes 120 + 30 = 150 over it. Both jobs
SUCCEEDED, both credits are on record, nothing failed, nothing was retried, and the 50
points of order 1001 are gone. Only the balance check sees it: 150 is not 120 + 50 + 30.
"""

import functools

from failure_modes.FM_011_lost_update import scenario
from runtime import accounts, effects, invariants
from runtime.explore import explore
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Scenario, Simulation

BASELINE = GUARDED.without("compare_and_set")
BUILD = functools.partial(scenario.scenario, BASELINE)


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def credits(result: RunResult):
    return [e for e in result.events if e.type == "account.credited"]


def balance(result: RunResult) -> int:
    row = result.store.one("SELECT balance FROM accounts WHERE name = ?", (scenario.WALLET,))
    return row["balance"]


def test_the_second_write_erases_the_first():
    result = scenario.run(BASELINE)

    [lost] = by_inv(result, "INV_008")
    assert lost.message == (
        "account acct-1 holds 150, but its opening balance 120 plus its 2 recorded credits "
        "come to 200: an update was lost"
    )
    assert lost.evidence.jobs == (1, 2)
    assert lost.evidence.executions == (1, 2)
    opened, first, second = [result.events[seq - 1] for seq in lost.evidence.events]
    assert (opened.type, opened.detail["balance"]) == ("account.opened", 120)
    # w1 read 120 at version 0 and wrote 170: a correct credit, on its own.
    assert (first.type, first.worker, first.detail["key"]) == (
        "account.credited",
        "w1",
        "points-1001",
    )
    assert first.detail["read"] == [120, 0]
    assert first.detail["balance"] == [120, 170]
    # w2 had read 120 at version 0 too, before w1 wrote; it wrote 120 + 30 over 170.
    assert (second.type, second.worker, second.detail["key"]) == (
        "account.credited",
        "w2",
        "points-1002",
    )
    assert second.detail["read"] == [120, 0]
    assert second.detail["balance"] == [170, 150]  # a credit that lowered the balance
    assert second.detail["version"] == [1, 2]  # the row had moved on since the read
    assert balance(result) == 150


def test_every_job_succeeded_and_every_credit_is_on_record():
    """The queue's view is spotless: two jobs SUCCEEDED at their first attempt, each with its
    credit recorded once. No attempt failed, nothing was retried, no effect is duplicated or
    orphaned. The only wrong number is the balance, and only INV_008 compares it."""
    result = scenario.run(BASELINE)

    states = result.store.tuples("SELECT state, attempts FROM jobs ORDER BY id")
    assert [tuple(row) for row in states] == [("SUCCEEDED", 1), ("SUCCEEDED", 1)]
    recorded = effects.applied(result.store)
    assert [(e.sink, e.key, e.execution_id) for e in recorded] == [
        (accounts.SINK, "points-1001", 1),
        (accounts.SINK, "points-1002", 2),
    ]
    types = {e.type for e in result.events}
    assert not {"job.retry_scheduled", "job.dead", "lease.lost", "effect.absorbed"} & types
    assert result.violated() == ["INV_008"]
    assert result.marks["cas.conflict"] == 0  # nothing compared the version it read


def test_the_lost_update_stays_in_the_final_database():
    """Nothing repairs it later: the final check of the database alone still reports it, so
    `fmlab check --db lab.db` finds a lost update in a real database too."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [v.message for v in by_inv(result, "INV_008")]


def test_without_overlap_nothing_is_lost():
    """The bug is the overlap, not the blind write alone: when w1 finishes its credit before
    w2 reads, w2 reads 170 and writes 200, and even the baseline holds. This is why the
    lost update survives testing: it needs two credits to the same balance in flight at
    once."""
    sim = Simulation(
        0,
        Scenario(
            jobs=(scenario.order(1001, 50), scenario.order(1002, 30)),
            handlers=scenario.HANDLERS,
            workers=("w1", "w2"),
            policies=BASELINE,
            accounts=((scenario.WALLET, scenario.OPENING),),
        ),
    )
    sim.drain("w1")  # w1 runs both orders, one after the other
    result = sim.finish()

    assert result.violations == []
    assert balance(result) == 200
    assert [c.detail["read"] for c in credits(result)] == [[120, 0], [170, 1]]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_the_lost_update_on_the_first_seed():
    """Three orders of one customer, two workers: whenever both workers read the balance
    before either writes it, one credit is lost. No fault is needed, so the first seed
    finds it."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_008" in summary.failing, summary.failing


def test_the_failure_shrinks_to_two_reads_before_two_writes():
    """Shrunk: two orders, two workers, eight steps, and no fault at all. Each worker
    leases, starts and reads; then both write. The only decisions that matter are whose
    turn it is: the interleaving is the whole bug."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_008")
    assert shrunk.steps == 8, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (2, 2)
    result = replay(BUILD, shrunk.case, stop_on="INV_008")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered, "a schedule that needs no decision would not be a race"
    assert all(d.startswith("next: ") for d in mattered), mattered
    assert not [e for e in result.events if e.type.startswith("fault.")]
    first, second = credits(result)
    assert first.detail["read"] == second.detail["read"] == [120, 0]
    [lost] = result.violations
    assert lost.message.startswith("account acct-1 holds ")
    assert lost.message.endswith("an update was lost")
