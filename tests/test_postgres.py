"""The PostgreSQL store: what it must do that SQLite does by being one writer at a time.

The queue's own tests run on both backends (the `backend` fixture). These are the
promises only a server with concurrent writers can break: leases that two workers take at
the same instant, a log whose seqs commit in order with no gap, one job for two
simultaneous submits of a key, the server's clock, and refusing a schema that is not ours.
"""

import random
import threading

import psycopg
import pytest

from runtime import invariants, states
from runtime.cli import main
from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import DatabaseError, StoreUnavailable
from runtime.pg_store import PgStore
from runtime.queue import Queue
from runtime.schema import SCHEMA_VERSION
from runtime.stores import time_authority
from tests.backends import stores
from tests.test_happy_path import story


def test_a_seed_prints_the_same_timeline_on_either_backend(pg_schemas):
    """The backend stores the run; it does not change it: ids, seqs, times and jitter
    come out the same bytes from SQLite and from PostgreSQL."""
    with stores("postgresql"):
        on_postgresql = story(3)
    with stores("sqlite"):
        on_sqlite = story(3)
    assert on_postgresql == on_sqlite
    assert "job.redriven" in on_sqlite and "job.succeeded" in on_sqlite


def test_workers_leasing_at_once_each_get_a_different_job(pg_schemas):
    """Eight threads, each on its own connection, lease until nothing is ready. Each job
    is leased once (SKIP LOCKED passes over a row another worker holds, instead of
    waiting on it and then finding it taken), and the log agrees with the rows."""
    url = pg_schemas.new_url()
    first = PgStore.open(url)
    queue = Queue(first, SimClock(), random.Random(0))
    for n in range(200):
        queue.submit("k", {"n": n})
    leased: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(slot: int) -> None:
        store = PgStore.open(url, create=False)
        mine = Queue(store, SimClock(), random.Random(slot))
        start.wait()
        while (lease := mine.lease(f"w{slot}")) is not None:
            mine.start(lease)
            mine.commit(lease, Effect("ledger", f"job-{lease.job_id}"))
            mine.ack(lease)
            leased[slot].append(lease.job_id)
        store.close()

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everyone = sorted(job for jobs in leased for job in jobs)
    assert everyone == list(range(1, 201))
    assert sum(1 for jobs in leased if jobs) > 1  # the work really was shared
    assert {job.state for job in queue.jobs()} == {states.SUCCEEDED}
    assert invariants.check(first, final=True) == []


def test_the_log_commits_in_seq_order_with_no_gap(pg_schemas):
    """A reader that follows the log by `seq > last` must never skip an event that
    commits late. Writers on six connections append while a reader follows, two events a
    transaction (the second goes out with the COMMIT: runtime.pg_store._Session); every
    seq it saw came in order, with none missing, and a rolled-back append left no hole."""
    url = pg_schemas.new_url()
    reader = PgStore.open(url)

    def write(slot: int) -> None:
        store = PgStore.open(url, create=False)
        for n in range(30):
            with store.transaction() as tx:
                first = tx.event(float(n), "test.appended", worker=f"w{slot}", n=n)
                second = tx.event(float(n), "test.appended", worker=f"w{slot}", n=n)
                assert second == first + 1
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.event(0.0, "test.rolled_back", worker=f"w{slot}")
            tx.event(0.0, "test.rolled_back", worker=f"w{slot}")
            raise RuntimeError("the transaction fails after its appends")
        store.close()

    threads = [threading.Thread(target=write, args=(slot,)) for slot in range(6)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    while True:
        finished = not any(thread.is_alive() for thread in threads)
        seen += [e.seq for e in reader.events(seen[-1] if seen else 0)]
        if finished:
            break

    assert seen == list(range(1, 361))
    assert {e.type for e in reader.events()} == {"test.appended"}


def test_an_append_refused_at_the_commit_takes_its_transaction_with_it(pg_schemas):
    """An event appended after a transaction's first goes out with the next statement or
    the COMMIT. The server refusing it there must roll back the whole transaction and
    leave the connection ready for the next one."""
    store = PgStore.open(pg_schemas.new_url())
    refused = pytest.raises(psycopg.errors.UntranslatableCharacter)  # jsonb takes no \u0000
    with refused, store.transaction() as tx:
        tx.event(0.0, "test.first", worker="w1")
        tx.event(0.0, "test.refused", worker="w1", text="\x00")

    assert store.events() == []
    with store.transaction() as tx:
        assert tx.event(0.0, "test.after", worker="w1") == 1
    assert [e.type for e in store.events()] == ["test.after"]


def test_two_submits_of_one_key_at_once_make_one_job(pg_schemas):
    url = pg_schemas.new_url()
    PgStore.open(url).close()
    ids: list[int] = []
    start = threading.Barrier(6)

    def submit() -> None:
        store = PgStore.open(url, create=False)
        start.wait()
        ids.append(Queue(store, SimClock(), random.Random(0)).submit("k", {}, idempotency_key="a"))
        store.close()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ids == [1] * 6


def test_leases_are_set_by_the_servers_clock(pg_schemas):
    """A real process's time authority on PostgreSQL is the server, asked at each reading:
    the lease is set between two readings of the server's clock, and with the connection
    gone there is no time to read (a clock of this machine would still answer)."""
    store = pg_schemas.new_store()
    clock = time_authority(store)
    queue = Queue(store, clock, random.Random(0))
    queue.submit("k", {})
    before = server_now(store)
    lease = queue.lease("w1")
    after = server_now(store)

    assert lease is not None
    assert before <= lease.expires_at - queue.policies.lease_s <= after
    store._conn.close()
    with pytest.raises(StoreUnavailable):
        clock.now()


def server_now(store: PgStore) -> float:
    return store.one("SELECT extract(epoch FROM clock_timestamp())::float8")[0]


@pytest.mark.parametrize("verb", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
def test_the_log_refuses_to_be_rewritten(pg_schemas, verb):
    store = pg_schemas.new_store()
    Queue(store, SimClock(), random.Random(0)).submit("k", {})
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
        store.all(verb)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="TRUNCATE refused"):
        store.all("TRUNCATE events")
    assert [e.type for e in store.events()] == ["job.submitted"]


def test_a_schema_of_another_application_is_refused_and_left_as_it_was(pg_schemas):
    url = pg_schemas.new_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        with pytest.raises(DatabaseError, match="not a failure-mode-lab database"):
            PgStore.open(url)
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    assert tables == [("orders",)]


def test_a_newer_schema_is_refused_and_an_empty_one_is_not_a_database(pg_schemas):
    url = pg_schemas.new_url()
    with pytest.raises(DatabaseError, match="no lab database"):
        PgStore.open(url, create=False)
    PgStore.open(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE fmlab_meta SET schema_version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(DatabaseError, match="newer than this lab's"):
        PgStore.open(url)


def test_the_command_line_takes_a_url_and_refuses_a_bad_one_in_one_line(pg_schemas, capsys):
    url = pg_schemas.new_url()
    assert main(["submit", "k", '{"n": 1}', "--db", url]) == 0
    assert capsys.readouterr().out == "1\n"
    assert main(["check", "--db", url]) == 0

    unreachable = "postgresql://nobody@127.0.0.1:1/fmlab"
    assert main(["check", "--db", unreachable]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fmlab: error: postgresql://nobody@127.0.0.1:1/fmlab: cannot connect")
    assert error.count("\n") == 1
