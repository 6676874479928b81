"""Derived views over the failures on record: clusters and severity. They are computed
from the log, stored only to be read, and rebuilt whole: running a rebuild twice, or after
a wipe, leaves exactly the same rows."""

import json

import pytest

from runtime.cli import main
from runtime.clock import SimClock
from runtime.intents import system
from runtime.intents.log import record
from runtime.observe import clusters, severity
from runtime.observe.failures import Failure
from runtime.policies import GUARDED
from runtime.store import Store


def failing_batches(*starts: float, size: int = 4, fail_rate: float = 1.0) -> Store:
    """A batch of `size` intents recorded at each of `starts` (seconds), synced against a
    target failing `fail_rate` of calls, each batch worked until quiet."""
    store = Store.memory()
    clock = SimClock()
    for start in starts:
        clock.set(start)
        queue = system.queue(store, clock, fail_rate=fail_rate, seed=int(start))
        for n in range(size):
            record(queue, "order.placed", {"order": n, "batch": start})
        system.work(queue)
    return store


def test_a_cluster_is_at_least_three_failures_of_one_type_in_one_window_counted_truly():
    store = failing_batches(0.0, size=4)
    found = clusters.compute(store)

    # 4 syncs x 5 attempts fail; the stated backoff (10 s, 30 s, 2 min, 10 min, jittered)
    # puts most of them in the first 10-minute window, and the count there is the real one.
    first = found[0]
    assert (first.type, first.window_start, first.window_end) == ("order.placed", 0.0, 600.0)
    in_window = [
        e for e in store.events()
        if e.type in ("job.retry_scheduled", "job.dead") and 0.0 <= e.at < 600.0
    ]  # fmt: skip
    assert first.failures == len(in_window) >= clusters.AT_LEAST
    assert (first.first_seq, first.last_seq) == (in_window[0].seq, in_window[-1].seq)


def failed_at(*times: float, type_: str = "order.placed") -> list[Failure]:
    return [Failure(n, at, "FAILED", type_, n, 1, "boom") for n, at in enumerate(times, 1)]


def test_fewer_than_three_in_a_window_or_a_type_are_not_a_cluster():
    assert clusters.clusters_of(failed_at(1.0, 2.0)) == []
    assert clusters.clusters_of(failed_at(598.0, 599.0, 601.0, 602.0)) == []  # 2 + 2
    mixed = failed_at(1.0, 2.0) + failed_at(3.0, type_="refund.issued")
    assert clusters.clusters_of(mixed) == []
    [three] = clusters.clusters_of(failed_at(1.0, 2.0, 599.999))
    assert (three.failures, three.window_start, three.window_end) == (3, 0.0, 600.0)


def test_a_rebuild_is_idempotent_twice_and_after_a_wipe():
    store = failing_batches(0.0, 7200.0)

    once = clusters.rebuild(store, 0.0), severity.rebuild(store, 0.0)
    twice = clusters.rebuild(store, 0.0), severity.rebuild(store, 0.0)
    stored = clusters.stored(store), severity.stored(store)
    with store.transaction() as tx:
        tx.execute("DELETE FROM failure_clusters")
        tx.execute("DELETE FROM severities")
    assert (clusters.stored(store), severity.stored(store)) == ([], [])
    after_wipe = clusters.rebuild(store, 0.0), severity.rebuild(store, 0.0)

    assert once == twice == stored == after_wipe
    rows = store.one("SELECT count(*) FROM failure_clusters")[0]
    assert rows == len(once[0])  # no duplicates left behind by the second rebuild


def test_each_failure_is_rated_by_how_far_it_went_with_its_reason():
    store = failing_batches(0.0, size=1)
    rated = {int(s.ref): s for s in severity.compute(store) if s.subject == "event"}
    failures = [e for e in store.events() if e.type in ("job.retry_scheduled", "job.dead")]

    levels = [rated[e.seq].level for e in failures]
    assert levels == ["LOW", "LOW", "MEDIUM", "MEDIUM", "HIGH"]  # attempts 1, 2, 3, 4, dead
    assert rated[failures[0].seq].reason == (
        "order.placed: failed at attempt 1, with attempts left"
    )
    assert rated[failures[-1].seq].reason == (
        "order.placed: DEAD after attempt 5: its budget is spent"
    )


def test_clusters_are_high_and_a_type_clustering_in_two_windows_within_a_day_is_critical():
    store = failing_batches(0.0, 7200.0)
    rated = severity.compute(store)

    assert {s.level for s in rated if s.subject == "cluster"} == {"HIGH"}
    [critical] = [s for s in rated if s.subject == "type"]
    assert (critical.ref, critical.level) == ("order.placed", "CRITICAL")
    assert "within 24 h" in critical.reason


def test_clusters_a_day_apart_are_high_but_not_critical():
    store = failing_batches(0.0, 2 * 86_400.0)
    assert [s for s in severity.compute(store) if s.subject == "type"] == []


def test_an_empty_database_has_no_clusters_and_no_severities():
    store = Store.memory()
    assert clusters.compute(store) == clusters.rebuild(store, 0.0) == []
    assert severity.compute(store) == severity.rebuild(store, 0.0) == []


# --- the commands ------------------------------------------------------------------------


def fmlab(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["clusters", "severity"])
def test_the_stored_view_says_when_it_is_stale_and_rebuild_refreshes_it(capsys, tmp_path, command):
    db = str(tmp_path / "lab.db")
    fmlab(capsys, "record", "order.placed", '{"order": 1}', "--db", db, "--clock", "sim")
    fmlab(capsys, "work", "--sync-fail-rate", "1", "--db", db, "--clock", "sim")

    code, out, _ = fmlab(capsys, command, "--db", db)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"stale: the log has changed since the last rebuild; run {command} --rebuild"
    )
    code, rebuilt, _ = fmlab(capsys, command, "--rebuild", "--db", db)
    assert code == 0 and "stale" not in rebuilt
    code, again, _ = fmlab(capsys, command, "--db", db)
    assert again == rebuilt  # stored, and fresh
    code, out, _ = fmlab(capsys, command, "--db", db, "--format", "json")
    assert json.loads(out)


def test_reading_the_views_writes_nothing(capsys, tmp_path):
    db = tmp_path / "lab.db"
    fmlab(capsys, "record", "order.placed", '{"order": 1}', "--db", str(db))
    before = db.read_bytes()

    for command in ("clusters", "severity"):
        assert fmlab(capsys, command, "--db", str(db))[0] == 0

    assert db.read_bytes() == before


def test_a_stored_view_that_disagrees_with_its_own_events_is_called_wrong_not_stale(
    capsys, tmp_path
):
    """Stale means the log moved on since the rebuild; wrong means the rows are not what
    the events the rebuild covered give (INV_011). A rebuild that adds makes it wrong."""
    db = tmp_path / "lab.db"
    store = failing_batches(0.0)
    store.backup_to(db)
    file = Store.open(db)
    adding = GUARDED.without("replace_derived")
    clusters.rebuild(file, 700.0, adding)
    clusters.rebuild(file, 700.0, adding)  # counts the same failures again
    file.close()

    code, out, _ = fmlab(capsys, "clusters", "--db", str(db))

    assert code == 0
    assert out.splitlines()[-1] == (
        "wrong: this differs from what its own events give (INV_011); run clusters --rebuild"
    )
