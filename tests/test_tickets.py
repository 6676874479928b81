"""The tickets service's core: the write model, the projector, the read model's rebuild,
and the consistency contract, on a real queue and a real SQLite store.

A command and its projection job commit together; the projector writes a version only
when it is newer; a rebuild replaces the read model whole. INV_012 is the judge: the read
model equals the projection of the write model once no projection is in flight.
"""

import sqlite3

import pytest

from runtime import invariants
from runtime.clock import SimClock
from runtime.errors import UsageError
from runtime.queue import Queue
from runtime.store import Store
from runtime.tickets import lag, model, service, views
from runtime.tickets.model import PROJECT, TicketClosed, UnknownTicket
from runtime.tickets.projection import PREVIEW_CHARS, VIEW_SCHEMA_VERSION, preview
from runtime.worker import Worker


def tickets(store: Store | None = None) -> Queue:
    return service.queue(store or Store.memory(), SimClock())


def inv_012(queue: Queue, *, final: bool = True) -> list[str]:
    return [str(v) for v in invariants.check(queue.store, final=final, only=["INV_012"])]


def projection_jobs(queue: Queue) -> list[tuple[int, str]]:
    rows = queue.store.all("SELECT id, state FROM jobs WHERE kind = ? ORDER BY id", (PROJECT,))
    return [(row[0], row[1]) for row in rows]


# --- the write model ----------------------------------------------------------------


def test_each_command_raises_the_version_and_enqueues_its_projection_in_one_transaction():
    queue = tickets()

    ticket = model.create(queue, "Printer on fire", "Third floor, the big one.")
    moved = model.set_status(queue, ticket.id, "in_progress")
    noted = model.set_note(queue, ticket.id, "Extinguisher sent.")

    assert (ticket.version, moved.version, noted.version) == (1, 2, 3)
    assert projection_jobs(queue) == [(1, "PENDING"), (2, "PENDING"), (3, "PENDING")]
    history = queue.store.all("SELECT version, command FROM ticket_changes ORDER BY version")
    assert [tuple(r) for r in history] == [(1, "create"), (2, "set_status"), (3, "set_note")]


def test_a_command_that_changes_nothing_writes_nothing_and_answers_the_current_version():
    queue = tickets()
    ticket = model.create(queue, "VPN down", "Since this morning.")

    again = model.set_status(queue, ticket.id, "open")

    assert again.version == 1
    assert len(projection_jobs(queue)) == 1


def test_a_closed_ticket_is_never_reopened_or_noted_by_the_model_nor_by_the_database():
    queue = tickets()
    ticket = model.create(queue, "Old laptop", "Please recycle.")
    model.set_status(queue, ticket.id, "closed")

    with pytest.raises(TicketClosed, match="closed"):
        model.set_status(queue, ticket.id, "open")
    with pytest.raises(TicketClosed):
        model.set_note(queue, ticket.id, "one more thing")
    with pytest.raises(sqlite3.IntegrityError, match="closed ticket"):
        queue.store.all("UPDATE tickets SET status = 'open', version = 9 WHERE id = 1")


def test_the_database_refuses_a_version_that_does_not_grow():
    queue = tickets()
    model.create(queue, "Desk", "Wobbles.")

    with pytest.raises(sqlite3.IntegrityError, match="only grows"):
        queue.store.all("UPDATE tickets SET version = 1, note = 'x' WHERE id = 1")


@pytest.mark.parametrize(
    "call,refused",
    [
        (lambda q: model.create(q, "  ", "message"), "subject must be a non-empty string"),
        (lambda q: model.create(q, "subject", 42), "message must be a non-empty string"),
        (lambda q: model.create(q, "s" * 201, "message"), "at most 200"),
        (lambda q: model.set_status(q, 1, "reopened"), "status must be one of"),
        (lambda q: model.set_note(q, 99, "note"), "no ticket 99"),
        (lambda q: model.set_note(q, 1, ""), "note must be a non-empty string"),
    ],
)
def test_bad_commands_are_refused_and_write_nothing(call, refused):
    queue = tickets()
    model.create(queue, "Mouse", "Left button sticks.")
    before = queue.store.one("SELECT count(*) FROM events")[0]

    with pytest.raises(UsageError, match=refused):
        call(queue)

    assert queue.store.one("SELECT count(*) FROM events")[0] == before


# --- the projector ------------------------------------------------------------------


def test_the_projector_makes_the_read_model_equal_the_projection_of_the_write_model():
    queue = tickets()
    first = model.create(queue, "Printer on fire", "x" * 80)
    second = model.create(queue, "Coffee", "The machine is empty.")
    model.set_status(queue, second.id, "closed")
    model.set_note(queue, first.id, "On it.")
    assert inv_012(queue, final=False) == []  # projections in flight: nothing to compare yet

    service.project_until_quiet(queue)

    view = views.get_view(queue.store, first.id)
    assert view is not None
    assert (view.version, view.has_note, view.schema_version) == (2, True, VIEW_SCHEMA_VERSION)
    assert view.preview == "x" * PREVIEW_CHARS + "…"
    assert views.status_counts(queue.store) == {"closed": 1, "open": 1}
    assert inv_012(queue) == []


def test_a_late_projection_of_an_older_version_changes_nothing():
    """Version 2's job runs first; version 1's, delivered late, is skipped by the database
    in the same statement that would have written it."""
    queue = tickets()
    ticket = model.create(queue, "Badge", "Does not open the door.")
    model.set_status(queue, ticket.id, "in_progress")
    (v1, _), _ = projection_jobs(queue)
    queue.store.all("UPDATE jobs SET run_at = 5 WHERE id = ?", (v1,))  # v1 is delivered late

    Worker("p1", queue, service.HANDLERS).run_one()
    queue.clock.set(5)
    Worker("p1", queue, service.HANDLERS).run_one()

    view = views.get_view(queue.store, ticket.id)
    assert view is not None and (view.version, view.status) == (2, "in_progress")
    skipped = [e for e in queue.store.events() if e.type == "ticket.projection_skipped"]
    assert [(e.detail["version"], e.detail["view_version"]) for e in skipped] == [(1, 2)]
    assert queue.marks["projection.skipped"] == 1
    assert views.status_counts(queue.store) == {"in_progress": 1}
    assert inv_012(queue) == []


def test_the_preview_is_the_first_50_characters_and_an_ellipsis_only_when_cut():
    assert preview("short") == "short"
    assert preview("y" * 50) == "y" * 50
    assert preview("y" * 51) == "y" * 50 + "…"


# --- INV_012 catches a read model that is wrong -------------------------------------


def test_inv_012_reports_a_corrupt_row_and_wrong_counts_once_the_queue_is_quiet():
    queue = tickets()
    ticket = model.create(queue, "Chair", "Squeaks.")
    service.project_until_quiet(queue)
    queue.store.all("UPDATE ticket_views SET status = 'closed' WHERE id = ?", (ticket.id,))

    found = inv_012(queue)

    assert any("status 'closed' instead of 'open'" in v for v in found), found
    assert any("status counts" not in v and "jobs [1]" in v for v in found), found


def test_inv_012_reports_a_ticket_the_read_model_never_got():
    queue = tickets()
    model.create(queue, "Monitor", "Flickers.")
    queue.store.all("UPDATE jobs SET state = 'SUCCEEDED' WHERE kind = ?", (PROJECT,))

    assert any("not in the read model" in v for v in inv_012(queue))


def test_inv_012_reports_a_read_that_went_back():
    queue = tickets()
    queue.note("ticket.read", ticket=1, version=3)
    queue.note("ticket.read", ticket=1, version=2)

    found = inv_012(queue)

    assert len(found) == 1 and "read at version 3, then at version 2" in found[0]


# --- rebuild by replay --------------------------------------------------------------


def test_a_rebuild_mends_a_corrupt_read_model_and_keeps_what_is_right():
    queue = tickets()
    for n in range(7):
        model.create(queue, f"Ticket {n}", f"Message {n}")
    model.set_status(queue, 3, "closed")
    service.project_until_quiet(queue)
    queue.store.all("UPDATE ticket_views SET preview = 'garbage', version = 99 WHERE id = 2")
    queue.store.all("DELETE FROM ticket_views WHERE id = 5")
    queue.store.all("UPDATE ticket_status_counts SET tickets = 40")
    assert inv_012(queue)

    rebuilt = views.rebuild(queue.store, queue.clock, batch=3)

    assert (rebuilt.tickets, rebuilt.taken_from_live, rebuilt.batches) == (7, 0, 3)
    assert inv_012(queue) == []


def test_a_rebuild_takes_in_what_a_projection_wrote_while_the_shadow_was_filled():
    """The projector keeps writing while a rebuild fills its shadow a batch at a time: the
    swap takes every live row that became newer, so nothing projected meanwhile is lost."""
    queue = tickets()
    for n in range(4):
        model.create(queue, f"Ticket {n}", "Message")
    service.project_until_quiet(queue)
    store, transactions = queue.store, 0
    own_transaction = store.transaction

    def transaction():
        """The rebuild's third transaction (its second batch) begins only after ticket 1,
        already copied by the first batch, has been changed and projected."""
        nonlocal transactions
        transactions += 1
        if transactions == 3:
            del store.transaction
            model.set_status(queue, 1, "in_progress")
            service.project_until_quiet(queue)
        return own_transaction()

    store.transaction = transaction
    rebuilt = views.rebuild(store, queue.clock, batch=2)

    assert rebuilt.taken_from_live == 1
    view = views.get_view(store, 1)
    assert view is not None and (view.status, view.version) == ("in_progress", 2)
    assert inv_012(queue) == []


def test_a_rebuild_run_twice_gives_the_same_read_model():
    queue = tickets()
    for n in range(5):
        model.create(queue, f"Ticket {n}", "Message")
    service.project_until_quiet(queue)

    views.rebuild(queue.store, queue.clock)
    once = views.list_views(queue.store)
    views.rebuild(queue.store, queue.clock)

    assert views.list_views(queue.store) == once
    assert inv_012(queue) == []


def test_a_shadow_left_by_a_rebuild_that_died_is_dropped_once_it_is_an_hour_old():
    queue = tickets()
    model.create(queue, "Ticket", "Message")
    seq = queue.note("ticket.rebuild_started")
    queue.store.all(f"CREATE TABLE {views.SHADOW_PREFIX}{seq} (id INTEGER PRIMARY KEY)")
    queue.clock.advance(views.STALE_SHADOW_S + 1)

    views.rebuild(queue.store, queue.clock)

    names = {r[0] for r in queue.store.all("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not [n for n in names if n.startswith(views.SHADOW_PREFIX)]


# --- the consistency contract -------------------------------------------------------


def test_projection_lag_is_measured_per_version_from_its_commit_to_its_projection():
    """Versions 1 and 2 commit at t=0 and t=1; one projection at t=3 covers both (it
    carries version 2, the ticket's newest by then); version 1's own job is skipped."""
    queue = tickets()
    ticket = model.create(queue, "Ticket", "Message")
    queue.clock.set(1.0)
    model.set_status(queue, ticket.id, "in_progress")
    (v1, _), _ = projection_jobs(queue)
    queue.store.all("UPDATE jobs SET run_at = 10 WHERE id = ?", (v1,))
    queue.clock.set(3.0)

    service.project_until_quiet(queue)

    assert lag.lag_samples_ms(queue.store) == [2000.0, 3000.0]
    stats = lag.projection(queue.store)
    assert (stats.samples, stats.lag_p50_ms, stats.lag_p99_ms) == (2, 2000.0, 3000.0)
    assert (stats.backlog, stats.errors, stats.dead) == (0, 0, 0)


def test_how_long_a_read_model_row_has_lacked_a_version():
    queue = tickets()
    ticket = model.create(queue, "Ticket", "Message")
    service.project_until_quiet(queue)
    queue.clock.set(2.0)
    model.set_status(queue, ticket.id, "closed")

    assert lag.behind_ms(queue.store, ticket.id, 1, now=2.75) == 750.0
    assert lag.behind_ms(queue.store, ticket.id, 2, now=2.75) == 0.0
    assert lag.READ_LAG_MS == 500


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert (lag.percentile(values, 50), lag.percentile(values, 99)) == (50.0, 99.0)
    assert lag.percentile([], 99) == 0.0


def test_unknown_ticket():
    with pytest.raises(UnknownTicket):
        model.get(Store.memory(), 1)


# --- reconciliation -------------------------------------------------------------------


def test_reconcile_finds_a_damaged_row_and_leaves_one_that_is_only_behind():
    """Damage is a row at its ticket's version that is not what projecting the ticket
    gives; a row behind its ticket is a projection still to come."""
    queue = tickets()
    for n in range(3):
        model.create(queue, f"Ticket {n}", "Message")
    service.project_until_quiet(queue)
    queue.store.all("UPDATE ticket_views SET preview = 'garbled' WHERE id = 2")
    model.set_status(queue, 3, "closed")  # ticket 3's row is now one version behind
    queue.store.all("UPDATE ticket_views SET subject = 'stale' WHERE id = 3")

    assert views.reconcile(queue.store, queue.clock) == [2]
    [found] = [e for e in queue.store.events() if e.type == "ticket.views_suspect"]
    assert found.detail == {"tickets": [2]}


def test_fmlab_reconcile_exits_1_naming_the_damaged_rows_and_0_after_a_rebuild(tmp_path, capsys):
    from runtime import cli

    db = tmp_path / "tickets.db"
    store = Store.open(db)
    queue = service.queue(store, SimClock())
    model.create(queue, "Ticket", "Message")
    service.project_until_quiet(queue)
    store.all("UPDATE ticket_views SET has_note = 1 WHERE id = 1")
    store.close()

    assert cli.main(["reconcile", "--db", str(db)]) == 1
    assert "damaged rows: tickets 1" in capsys.readouterr().out
    Store.open(db).all("UPDATE ticket_status_counts SET tickets = 3")
    assert cli.main(["reconcile", "--db", str(db)]) == 1
    assert "status count open: 3 stored, 1 rows" in capsys.readouterr().out
    assert cli.main(["rebuild", "--db", str(db)]) == 0
    assert cli.main(["reconcile", "--db", str(db)]) == 0


# --- idempotency keys ---------------------------------------------------------------


def test_a_create_retried_with_its_key_answers_with_the_first_ticket_and_opens_none():
    queue = tickets()

    first, new = model.opened(queue, "Printer", "On fire", key="req-1")
    again, new_again = model.opened(queue, "Printer", "On fire", key="req-1")

    assert (new, new_again) == (True, False)
    assert again == first
    assert projection_jobs(queue) == [(1, "PENDING")]  # one ticket, one projection
    with pytest.raises(model.KeyReused, match="req-1"):
        model.create(queue, "Printer", "Out of paper", key="req-1")
    other = model.create(queue, "Printer", "On fire", key="req-2")
    assert other.id == 2
