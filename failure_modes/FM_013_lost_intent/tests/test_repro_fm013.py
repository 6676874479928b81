"""FM_013, the break: the work is enqueued before the intent is written, and a crash loses it.

Baseline = GUARDED with exactly one lever off (`intent_first`). The client records order
1001 in two transactions instead of one: first the projection and the sync, for the id the
intent is about to get (`work_enqueued`), then the intent itself (`recorded`). Between the
two, w1 projects the order and syncs it to the outside target. Then the client dies. The
target has the order, the workers report success, and the intent log, the system of
record, has never heard of it: no intent row, no `intent.recorded`, nothing in `fmlab
status` or `health`. INV_010 names the two jobs that worked for an intent nobody holds.
"""

import functools

from failure_modes.FM_013_lost_intent import scenario
from runtime import effects, invariants
from runtime.explore import explore
from runtime.faults import FaultMix
from runtime.intents import lifecycle
from runtime.intents.log import PROJECT, PROJECTION, SYNC, SYNC_TARGET
from runtime.observe import health
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation

BASELINE = GUARDED.without("intent_first")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
ORPHANS = [
    "job 1 works for intent 1, which the intent log does not hold",
    "job 2 works for intent 1, which the intent log does not hold",
]


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def one_order() -> Simulation:
    """One client recording order 1001, one worker, no fault: the scripted world."""
    return Simulation(0, scenario.scenario(BASELINE, jobs=1, workers=1, mix=QUIET))


def intent_jobs(store) -> list[tuple]:
    """(job, kind, the intent it works for, the order in its payload, state), by job id."""
    return [
        tuple(row)
        for row in store.tuples(
            "SELECT id, kind, json_extract(payload, '$.intent'),"
            " json_extract(payload, '$.payload.order'), state FROM jobs ORDER BY id"
        )
    ]


def logged_orders(store) -> list[tuple[int, int]]:
    """(intent id, order) for every intent the log holds."""
    sql = "SELECT id, json_extract(payload, '$.order') FROM intents ORDER BY id"
    return [tuple(row) for row in store.tuples(sql)]


def cut_off(result: RunResult) -> list[int]:
    """The intents a client crash caught between its two transactions: at the moment of
    the crash their jobs were enqueued and their intent was not yet written."""
    enqueued, recorded, cut = set(), set(), []
    for event in result.events:
        if event.type == "job.submitted" and event.detail["kind"] in (PROJECT, SYNC):
            row = result.store.one(
                "SELECT json_extract(payload, '$.intent') FROM jobs WHERE id = ?",
                (event.job_id,),
            )
            enqueued.add(row[0])
        elif event.type == "intent.recorded":
            recorded.add(event.detail["intent"])
        elif event.type == "fault.client_crash":
            cut += sorted(enqueued - recorded - set(cut))
    return cut


@functools.cache
def explored(seed: int) -> RunResult:
    return scenario.run(BASELINE, seed)


def test_the_work_ran_for_an_intent_the_log_never_holds():
    result = scenario.run(BASELINE)

    orphans = by_inv(result, "INV_010")
    assert [v.message for v in orphans] == ORPHANS
    assert [v.evidence.jobs for v in orphans] == [(1,), (2,)]
    # The evidence names the jobs; their rows say for whom and for what they worked.
    assert intent_jobs(result.store) == [
        (1, PROJECT, 1, 1001, "SUCCEEDED"),
        (2, SYNC, 1, 1001, "SUCCEEDED"),
    ]
    assert result.violated() == ["INV_010"]


def test_the_target_has_the_order_and_the_intent_log_has_nothing():
    """The outside world was changed (the sync's external effect, keyed `intent-1`) and the
    projection was derived, both for intent 1; the intent log holds no row and no
    `intent.recorded`. The crash came after both effects: the client died last."""
    result = scenario.run(BASELINE)

    applied = [(e.sink, e.key, e.job_id) for e in effects.applied(result.store)]
    assert applied == [(PROJECTION, "intent-1", 1), (SYNC_TARGET, "intent-1", 2)]
    assert logged_orders(result.store) == []
    types = [e.type for e in result.events]
    assert "intent.recorded" not in types
    assert types[-1] == "fault.client_crash"
    [synced] = [e for e in result.events if e.type == "effect.applied" and e.detail.get("external")]
    assert (synced.worker, synced.detail["key"]) == ("w1", "intent-1")


def test_status_and_health_show_nothing_for_it():
    """Status is derived from the intent log, so an intent the log lacks has no status at
    all: `fmlab status` lists nothing, and `health` counts no intent, nothing pending,
    nothing dead, no backlog (the two jobs SUCCEEDED at their first attempt). The first
    signal is a customer, or the target's own records, asking about order 1001."""
    result = scenario.run(BASELINE)

    assert lifecycle.statuses(result.store) == []
    now = result.events[-1].at
    seen = health.health(result.store, now)
    assert seen.intents == 0
    assert set(seen.by_sync.values()) == {0}
    assert (seen.dead_letters, seen.backlog) == (0, {})
    attempts = result.store.tuples("SELECT state, attempts, last_error FROM jobs ORDER BY id")
    assert [tuple(row) for row in attempts] == [("SUCCEEDED", 1, None)] * 2


def test_the_lost_intent_stays_in_the_final_database():
    """Nothing repairs it: the client that knew the intent is gone, and nobody retries a
    recording. Checked afresh on the final database alone, both jobs still work for an
    intent the log does not hold, so `fmlab check --db lab.db` finds it too."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == ORPHANS


def test_the_window_alone_is_reported_without_a_crash_or_a_worker():
    """No crash, no worker: the client's first transaction enqueues the work for intent 1,
    and at that step INV_010 is reported, because the checker runs after every step and the
    jobs are there, ready to be leased, for an intent the log does not hold. The second
    transaction writes the intent, w1 then does the work, and the final state is
    consistent; the report stands, because the window itself is the bug (a crash inside it
    makes it last)."""
    sim = one_order()
    assert sim.client_step() == "work_enqueued"
    assert [v.message for v in sim.violations] == ORPHANS
    assert logged_orders(sim.store) == []
    assert sim.client_step() == "recorded"
    assert invariants.check(sim.store, only=["INV_010"], final=True) == []
    sim.drain("w1")  # only now does a worker run the projection and the sync
    result = sim.finish()

    assert invariants.check(result.store, final=True) == []  # the end state hides it
    assert result.violated() == ["INV_010"]
    assert logged_orders(result.store) == [(1, 1001)]


def test_a_worker_syncs_inside_the_window():
    """Still no crash. Between the client's two transactions w1 takes both jobs and syncs
    order 1001 to the outside target; then the intent is written. The database ends
    consistent, yet the target was told about an order that, at that moment, the system of
    record did not hold, and would never have held had the client died then."""
    sim = one_order()
    assert sim.client_step() == "work_enqueued"
    sim.drain("w1")  # the projection and the sync run, for intent 1
    assert sim.client_step() == "recorded"
    result = sim.finish()

    [synced] = [e for e in result.events if e.type == "effect.applied" and e.detail.get("external")]
    [recorded] = [e for e in result.events if e.type == "intent.recorded"]
    assert synced.seq < recorded.seq  # the target heard of it before the log did
    assert invariants.check(result.store, final=True) == []
    assert result.violated() == ["INV_010"]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]
    assert [v.inv for v in first.violations] == ["INV_010", "INV_010"]


def test_exploration_finds_it_on_the_first_seed():
    """Every recording passes through the window, so every explored run reports INV_010
    (2,000 of 2,000 seeds), whether or not the client ever crashes."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    assert "INV_010" in summary.failing, summary.failing


def test_exploration_finds_the_window_and_the_real_loss():
    """Among the first 30 seeds every run reports INV_010. Where no client crash fell
    between the two transactions, the final database is consistent: only the window was
    reported. Seed 20 is the first whose client really died between them: after
    enqueueing the work for order 1003 (intent 3). Both workers ran that work anyway, the
    target has `intent-3`, and the final database still holds jobs 5 and 6 for an intent
    the log never got."""
    seeds = range(30)
    assert all(explored(seed).violated() == ["INV_010"] for seed in seeds)
    for seed in seeds:
        if not cut_off(explored(seed)):
            assert invariants.check(explored(seed).store, final=True) == [], seed
    lost = [
        seed
        for seed in seeds
        if cut_off(explored(seed)) and invariants.check(explored(seed).store, final=True)
    ]
    assert lost[0] == 20, lost

    result = explored(20)
    assert cut_off(result) == [3]
    # The crash came right after the client's first transaction for intent 3.
    [crash] = [e for e in result.events if e.type == "fault.client_crash"]
    before = result.events[crash.seq - 2]
    assert (before.type, before.detail["key"]) == ("job.submitted", "intent.sync-3")
    assert logged_orders(result.store) == [(1, 1001), (2, 1002)]
    assert intent_jobs(result.store)[4:] == [
        (5, PROJECT, 3, 1003, "SUCCEEDED"),
        (6, SYNC, 3, 1003, "SUCCEEDED"),
    ]
    applied = {(e.sink, e.key) for e in effects.applied(result.store)}
    assert {(PROJECTION, "intent-3"), (SYNC_TARGET, "intent-3")} <= applied
    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [
        "job 5 works for intent 3, which the intent log does not hold",
        "job 6 works for intent 3, which the intent log does not hold",
    ]


def test_the_failure_shrinks_to_the_client_s_first_transaction():
    """Shrunk: one order, one worker, one step, and no decision but the plainest. The
    client enqueues the projection and the sync for intent 1, and the check after that
    step reports both. The window is the design, not bad luck."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=3, workers=2)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=3, workers=2), "INV_010")
    assert shrunk.steps == 1, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)
    result = replay(BUILD, shrunk.case, stop_on="INV_010")
    assert [c for c in result.decisions() if c.value] == []
    assert [(e.type, e.detail["kind"]) for e in result.events] == [
        ("job.submitted", PROJECT),
        ("job.submitted", SYNC),
    ]
    assert [v.message for v in result.violations] == ORPHANS
