"""FM_013, the fix: the intent first, in the same transaction as its work.

Under GUARDED `record` is one transaction: the intent row, its `intent.recorded` event and
its two follow-up jobs commit together. The jobs table is the outbox: no worker can see a
job before the intent it works for is durable, and the commit is the acknowledgement. A
client that dies can die before that commit (nothing was written, nothing was promised) or
after it (everything is there, and the workers finish it); there is no moment in between.
"""

import functools

import pytest

from failure_modes.FM_013_lost_intent import scenario
from failure_modes.proof import explored_clean
from runtime import effects, invariants
from runtime.faults import FaultMix
from runtime.intents import lifecycle
from runtime.intents.log import PROJECT, PROJECTION, SYNC, SYNC_TARGET
from runtime.policies import GUARDED
from runtime.sim import Simulation

SEEDS = range(500)
BUILD = functools.partial(scenario.scenario, GUARDED)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""


def orders(policies=GUARDED, count: int = 1) -> Simulation:
    """A client recording `count` orders (1001, 1002, ...), one worker, no fault."""
    return Simulation(0, scenario.scenario(policies, jobs=count, workers=1, mix=QUIET))


def intent_jobs(store) -> list[tuple]:
    """(job, kind, the intent it works for, the order in its payload), by job id."""
    return [
        tuple(row)
        for row in store.tuples(
            "SELECT id, kind, json_extract(payload, '$.intent'),"
            " json_extract(payload, '$.payload.order') FROM jobs ORDER BY id"
        )
    ]


def logged_orders(store) -> list[tuple[int, int]]:
    """(intent id, order) for every intent the log holds."""
    sql = "SELECT id, json_extract(payload, '$.order') FROM intents ORDER BY id"
    return [tuple(row) for row in store.tuples(sql)]


def test_scripted_schedule_holds_every_invariant():
    """The same schedule as the repro: the client's step, w1 drains, the client dies, w1
    drains. Guarded, the client's one step was the whole recording, so its crash finds
    nothing in flight: the intent is logged, projected and synced."""
    result = scenario.run(GUARDED)

    assert result.violations == []
    assert invariants.check(result.store, final=True) == []
    assert logged_orders(result.store) == [(1, 1001)]
    assert result.events[0].type == "intent.recorded"  # the intent before its work
    applied = [(e.sink, e.key, e.job_id) for e in effects.applied(result.store)]
    assert applied == [(PROJECTION, "intent-1", 1), (SYNC_TARGET, "intent-1", 2)]
    assert result.events[-1].type == "fault.client_crash"  # and nothing was lost by it
    [status] = lifecycle.statuses(result.store)
    assert (status.id, status.sync, status.projected) == (1, lifecycle.SYNCED, True)


def test_one_step_writes_the_intent_its_event_and_both_jobs():
    """The recording has one step, `recorded`: after it the intent row, its event and both
    jobs exist, written by one transaction (one moment on the clock, consecutive seqs,
    the intent first), and INV_010 holds. There is no step at which a job exists without
    its intent, so no worker can ever lease one."""
    sim = orders()
    assert sim.client_step() == "recorded"
    assert sim.violations == []

    events = sim.store.events()
    assert [(e.seq, e.type) for e in events] == [
        (1, "intent.recorded"),
        (2, "job.submitted"),
        (3, "job.submitted"),
    ]
    assert len({e.at for e in events}) == 1
    assert events[0].detail == {"intent": 1, "intent_type": "order.placed"}
    assert logged_orders(sim.store) == [(1, 1001)]
    assert intent_jobs(sim.store) == [(1, PROJECT, 1, 1001), (2, SYNC, 1, 1001)]
    assert sim.client_step() is None  # nothing left to record: that was all of it


def test_a_client_that_dies_before_its_transaction_leaves_nothing_at_all():
    """Two orders. The client records order 1001 (acknowledged: its transaction
    committed), then dies before its transaction for order 1002. Of order 1002 there is
    nothing at all: no intent, no job, no event. Nothing was acknowledged either, so the
    customer saw an error and can place it again; nothing was sent anywhere in its name.
    Order 1001 is whole, and w1 projects and syncs it."""
    sim = orders(count=2)
    while sim.client_step() != "recorded":  # order 1001, to its acknowledgement
        pass
    sim.crash_client()  # before the client's step for order 1002
    sim.drain("w1")
    result = sim.finish()

    assert result.violations == []
    assert logged_orders(result.store) == [(1, 1001)]
    assert [job[:3] for job in intent_jobs(result.store)] == [(1, PROJECT, 1), (2, SYNC, 1)]
    recorded = [e.detail["intent"] for e in result.events if e.type == "intent.recorded"]
    assert recorded == [1]
    assert {e.key for e in effects.applied(result.store)} == {"intent-1"}


def test_a_crash_anywhere_in_the_recording_leaves_all_of_it_or_none():
    """Walk every point at which the client can die while recording order 1001: before
    each of its steps and after the last. Whatever w1 then does, the database holds either
    nothing of the order or the intent with both its jobs, done; never work without its
    intent. Guarded there are two such points, before and after the one transaction."""
    steps = []
    sim = orders()
    while (step := sim.client_step()) is not None:
        steps.append(step)
    assert steps == ["recorded"]

    for crash_after in range(len(steps) + 1):
        sim = orders()
        for _ in range(crash_after):
            sim.client_step()
        sim.crash_client()
        sim.drain("w1")
        result = sim.finish()

        assert result.violations == [], crash_after
        jobs = intent_jobs(result.store)
        if logged_orders(result.store):
            assert logged_orders(result.store) == [(1, 1001)]
            assert jobs == [(1, PROJECT, 1, 1001), (2, SYNC, 1, 1001)], crash_after
        else:
            assert jobs == [], crash_after
            assert effects.applied(result.store) == [], crash_after


def test_an_explored_client_crash_drops_a_whole_order_never_half():
    """Explored seed 12: the client dies before its transaction for the third order (mark
    `fault.client_crash`). The log holds orders 1001 and 1002, each with its projection and
    its sync, done; of order 1003 there is nothing, anywhere. Every fault site was in the
    mix, and no invariant broke."""
    result = scenario.run(GUARDED, 12)

    assert result.violations == []
    assert result.marks["fault.client_crash"] == 1
    assert logged_orders(result.store) == [(1, 1001), (2, 1002)]
    assert intent_jobs(result.store) == [
        (1, PROJECT, 1, 1001),
        (2, SYNC, 1, 1001),
        (3, PROJECT, 2, 1002),
        (4, SYNC, 2, 1002),
    ]
    assert [s.sync for s in lifecycle.statuses(result.store)] == [lifecycle.SYNCED] * 2


@pytest.mark.parametrize("chunk", range(2))
def test_every_explored_run_holds_and_the_guard_was_put_to_work(chunk):
    """500 seeds: a client recording three orders while two workers project and sync them,
    every fault site in the mix, and the client itself dying before any of its steps (mark
    `fault.client_crash`, 21 and 23 times in the two chunks). No violation: a dead client
    loses only what it had not committed, and that was never acknowledged."""
    seeds = SEEDS[chunk * 250 : (chunk + 1) * 250]
    summary = explored_clean(BUILD, scenario.META, seeds, jobs=3, workers=2)
    assert summary.marks["fault.crash"] > 0  # workers died too, and their jobs were rescued
    assert summary.marks["reaper.rescued"] > 0
