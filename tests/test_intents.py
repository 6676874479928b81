"""The intent log: the user's intent is durable first; everything after it may fail.

These tests record intents on a real queue, run real workers against a sync target that
fails calls on cue (a seeded Random, never the module's), and read back where each intent
stands: the status is derived from the jobs and the log, never written by hand.
"""

import random
import sqlite3
from dataclasses import replace

import pytest

from runtime import invariants
from runtime.clock import SimClock
from runtime.dependency import Dependency, Remote
from runtime.errors import UsageError
from runtime.intents import lifecycle
from runtime.intents.log import (
    ANNOTATED,
    HANDLERS,
    PROJECT,
    SYNC,
    SYNC_TARGET,
    UnknownEvent,
    UnknownIntent,
    annotate,
    get,
    record,
)
from runtime.observe import clusters
from runtime.observe.health import health
from runtime.queue import Queue
from runtime.store import Store
from runtime.worker import Worker
from tests.support import POLICIES


def flaky(fail_rate: float) -> Dependency:
    """The sync target: always up, never overloaded, failing `fail_rate` of its calls."""
    return Dependency(SYNC_TARGET, (0.0, 0.0), 1_000, 1.0, 1_000, fail_rate=fail_rate)


def system(fail_rate: float = 0.0, *, seed: int = 7, attempts: int = 3) -> Queue:
    remote = Remote(flaky(fail_rate), random.Random(seed))
    policies = replace(POLICIES, attempts_max=attempts)
    return Queue(Store.memory(), SimClock(), random.Random(seed), policies, {SYNC_TARGET: remote})


def work(queue: Queue, workers: int = 2) -> None:
    """Run workers until nothing is left to do, moving the clock to each next retry."""
    crew = [Worker(f"w{n}", queue, HANDLERS) for n in range(1, workers + 1)]
    clock = queue.clock
    assert isinstance(clock, SimClock)
    while True:
        if not any([worker.run_one() for worker in crew]):
            deadline = queue.next_deadline()
            if deadline is None:
                return
            clock.set(max(deadline, clock.now()))


# --- record ------------------------------------------------------------------------------


def test_recording_an_intent_writes_it_its_jobs_and_its_event_in_one_transaction():
    queue = system()

    intent = record(queue, "order.placed", {"order": 1001, "total_cents": 4200})

    assert get(queue.store, intent).payload == {"order": 1001, "total_cents": 4200}
    jobs = queue.store.all("SELECT kind, idempotency_key, state FROM jobs ORDER BY id")
    assert [tuple(row) for row in jobs] == [
        (PROJECT, f"{PROJECT}-1", "PENDING"),
        (SYNC, f"{SYNC}-1", "PENDING"),
    ]
    types = [e.type for e in queue.store.events()]
    assert types == ["intent.recorded", "job.submitted", "job.submitted"]


def test_an_intent_whose_transaction_fails_leaves_nothing_behind():
    """The outbox: if the commit fails, neither the intent nor its jobs exist."""
    queue = system()

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    queue.store.before_transaction = locked
    with pytest.raises(Exception, match="locked"):
        record(queue, "order.placed", {"order": 1001})
    queue.store.before_transaction = None

    assert queue.store.one("SELECT count(*) FROM intents")[0] == 0
    assert queue.store.one("SELECT count(*) FROM jobs")[0] == 0


def test_an_intent_is_never_rewritten_or_deleted():
    queue = system()
    record(queue, "order.placed", {"order": 1001})

    for sql in ("UPDATE intents SET type = 'x'", "DELETE FROM intents"):
        with (
            pytest.raises(sqlite3.DatabaseError, match="append-only"),
            queue.store.transaction() as tx,
        ):
            tx.execute(sql)


@pytest.mark.parametrize(
    ("type_", "payload"),
    [("", {}), ("  ", {}), ("order.placed", []), ("order.placed", {"x": float("nan")})],
)
def test_a_malformed_intent_is_refused_and_nothing_is_written(type_, payload):
    queue = system()
    with pytest.raises(UsageError):
        record(queue, type_, payload)
    assert queue.store.one("SELECT count(*) FROM intents")[0] == 0


# --- lifecycle ---------------------------------------------------------------------------


def test_a_reliable_target_syncs_and_projects_every_intent():
    queue = system()
    for order in range(3):
        record(queue, "order.placed", {"order": order})

    work(queue)

    rows = lifecycle.statuses(queue.store)
    assert [(r.sync, r.projected, r.retry_count) for r in rows] == [("SYNCED", True, 0)] * 3
    assert invariants.check(queue.store, final=True) == []


def test_a_failing_sync_is_failed_while_retried_then_synced():
    """A target failing 60% of calls: some intents need retries. While a retry waits the
    intent is FAILED with its last error; once a call gets through it is SYNCED, with its
    retries counted."""
    queue = system(0.6, attempts=10)
    for order in range(10):
        record(queue, "order.placed", {"order": order})
    for worker in (Worker("w1", queue, HANDLERS),):
        for _ in range(20):
            worker.run_one()

    waiting = [r for r in lifecycle.statuses(queue.store) if r.sync == "FAILED"]
    assert waiting, "with 60% of calls failing, some intent must be waiting on a retry"
    assert all(r.last_error == "Unavailable: sync_target failed the call" for r in waiting)
    assert all(r.retry_count >= 1 for r in waiting)

    work(queue)

    rows = lifecycle.statuses(queue.store)
    assert {r.sync for r in rows} <= {"SYNCED", "DEAD"}  # every intent ends, one way or the other
    assert [r for r in rows if r.sync == "SYNCED" and r.retry_count], "none synced on a retry"
    assert all(r.retry_count == 10 for r in rows if r.sync == "DEAD")  # its budget, spent
    assert invariants.check(queue.store, final=True) == []


def test_a_sync_that_never_gets_through_is_dead_with_every_error_on_record():
    queue = system(1.0, attempts=3)
    intent = record(queue, "order.placed", {"order": 1001})

    work(queue)

    status = lifecycle.status_of(queue.store, intent)
    assert status is not None
    assert (status.sync, status.retry_count, status.projected) == ("DEAD", 3, True)
    assert status.last_error == "Unavailable: sync_target failed the call"
    errors = [
        e.detail["error"]
        for e in queue.store.events()
        if e.detail.get("error") and e.type in ("job.retry_scheduled", "job.dead")
    ]
    assert errors == ["Unavailable: sync_target failed the call"] * 3


def test_a_redriven_dead_sync_is_failed_again_until_it_gets_through():
    queue = system(1.0, attempts=2)
    intent = record(queue, "order.placed", {"order": 1001})
    work(queue)
    sync_job = queue.store.one("SELECT id FROM jobs WHERE kind = ?", (SYNC,))["id"]

    queue.remotes[SYNC_TARGET] = Remote(flaky(0.0))  # the target is fixed
    queue.redrive(sync_job, reason="target fixed", by="operator")
    status = lifecycle.status_of(queue.store, intent)
    assert status is not None and status.sync == "FAILED"  # waiting, with failures on record
    work(queue)

    status = lifecycle.status_of(queue.store, intent)
    assert status is not None and (status.sync, status.retry_count) == ("SYNCED", 2)


# --- annotations ---------------------------------------------------------------------------


def test_an_operator_annotates_an_intent_and_an_event_and_nothing_else_changes():
    queue = system()
    intent = record(queue, "order.placed", {"order": 1001})
    before = queue.store.one("SELECT * FROM intents WHERE id = ?", (intent,))

    first = annotate(queue, "intent", intent, "customer called about it", author="ana")
    second = annotate(queue, "event", 1, "recorded during the migration", author="ana")

    notes = [e for e in queue.store.events() if e.type == ANNOTATED]
    assert [e.seq for e in notes] == [first, second]
    assert notes[0].detail == {
        "on": "intent",
        "target": intent,
        "note": "customer called about it",
        "author": "ana",
    }
    assert tuple(queue.store.one("SELECT * FROM intents WHERE id = ?", (intent,))) == tuple(before)


@pytest.mark.parametrize(
    ("on", "target", "error"),
    [("intent", 99, UnknownIntent), ("event", 99, UnknownEvent), ("job", 1, UsageError)],
)
def test_a_note_on_something_missing_is_refused_and_nothing_is_written(on, target, error):
    queue = system()
    record(queue, "order.placed", {"order": 1001})
    events = len(queue.store.events())

    with pytest.raises(error):
        annotate(queue, on, target, "a note", author="ana")

    assert len(queue.store.events()) == events


# --- health ------------------------------------------------------------------------------


def test_health_of_an_empty_database_is_zeros():
    report = health(Store.memory(), now=0.0)

    assert report.intents == 0
    assert report.by_sync == {"PENDING": 0, "SYNCED": 0, "FAILED": 0, "DEAD": 0}
    assert (report.dead_letters, report.backlog) == (0, {})
    assert (report.oldest_failure_intent, report.oldest_failure_age_s) == (None, 0.0)
    assert (report.most_retried_intent, report.most_retries) == (None, 0)


def test_health_counts_the_states_the_backlog_and_the_oldest_failure():
    queue = system(1.0, attempts=2)
    first = record(queue, "order.placed", {"order": 1})
    work(queue)  # intent 1: DEAD after 2 failed syncs
    queue.clock.advance(100.0)
    record(queue, "order.placed", {"order": 2})  # intent 2: PENDING, its jobs waiting

    report = health(queue.store, now=queue.clock.now())

    assert report.intents == 2
    assert report.by_sync == {"PENDING": 1, "SYNCED": 0, "FAILED": 0, "DEAD": 1}
    assert report.dead_letters == 1
    assert report.backlog == {PROJECT: 1, SYNC: 1}
    assert report.oldest_failure_intent == first
    status = lifecycle.status_of(queue.store, first)
    assert status is not None and status.first_failed_at is not None
    assert report.oldest_failure_age_s == queue.clock.now() - status.first_failed_at
    assert (report.most_retried_intent, report.most_retries) == (first, 2)


# --- INV_010 and INV_011 ------------------------------------------------------------------


def durable(store: Store) -> list[str]:
    return [v.message for v in invariants.check(store, final=True, only=["INV_010"])]


def test_an_acknowledgement_without_its_intent_is_reported():
    queue = system()
    queue.note("intent.recorded", intent=7, intent_type="order.placed")  # forged: no row

    assert durable(queue.store) == [
        "intent 7 was acknowledged (intent.recorded) but is not in the log"
    ]


def test_work_for_an_intent_the_log_does_not_hold_is_reported():
    queue = system()
    job = queue.submit(SYNC, {"intent": 99, "type": "order.placed", "payload": {}})

    assert durable(queue.store) == [
        f"job {job} works for intent 99, which the intent log does not hold"
    ]


def test_an_intent_without_its_follow_up_jobs_is_reported():
    queue = system()
    with queue.store.transaction() as tx:
        tx.execute(
            "INSERT INTO intents (type, payload, recorded_at) VALUES ('order.placed', '{}', 0)"
        )

    assert durable(queue.store) == ["intent 1 is in the log without its projection and sync jobs"]


def test_recorded_intents_hold_through_any_run():
    queue = system(0.5, attempts=3)
    for order in range(5):
        record(queue, "order.placed", {"order": order})
    work(queue)
    assert durable(queue.store) == []


def test_a_derived_table_that_disagrees_with_its_own_events_is_reported_a_stale_one_is_not():
    queue = system(1.0, attempts=5)
    for order in range(3):
        record(queue, "order.placed", {"order": order})
    work(queue)
    clusters.rebuild(queue.store, queue.clock.now())

    def fresh() -> list[str]:
        return [v.message for v in invariants.check(queue.store, final=True, only=["INV_011"])]

    assert fresh() == []
    queue.clock.advance(1.0)
    record(queue, "order.placed", {"order": 99})
    work(queue)  # more failures: the stored view is now behind the log, which is not wrong
    assert fresh() == []

    with queue.store.transaction() as tx:  # a rebuild that added instead of replacing
        tx.execute("UPDATE failure_clusters SET failures = failures * 2")
    [message] = fresh()
    assert message.startswith("failure_clusters holds 1 rows, but the log up to event ")
    assert "1 stored that it does not give, 1 it gives that are not stored" in message
