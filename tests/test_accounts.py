"""Balances: a credit is a read-modify-write, and compare-and-set is what keeps it whole.

A credit reads the balance and its version when the handler runs, and writes the sum back
at the commit. These tests drive the two halves by hand, with another credit landing in
between, and read the outcome from the database: the balance row, the effect records and
the log. INV_008 then checks the balance against the credits recorded.
"""

import pytest

from runtime import accounts, invariants
from runtime.errors import Conflict, UsageError
from runtime.queue import Queue
from runtime.store import Store
from runtime.worker import Worker
from tests.support import POLICIES, new_queue, schema_1_file

GUARDED = POLICIES
UNGUARDED = POLICIES.without("compare_and_set")


def top_up(job):
    return accounts.credit("acct-1", job.payload["amount"], f"top-up-{job.payload['order']}")


def two_overlapping_credits(queue: Queue) -> tuple[Worker, Worker]:
    """Orders 1001 (+50) and 1002 (+30) on one account opened at 120; both workers read
    the balance (at version 0) before either writes."""
    accounts.open_account(queue.store, 0.0, "acct-1", 120)
    queue.submit("top_up", {"order": 1001, "amount": 50})
    queue.submit("top_up", {"order": 1002, "amount": 30})
    w1, w2 = (Worker(name, queue, {"top_up": top_up}) for name in ("w1", "w2"))
    first, second = w1.attempt(), w2.attempt()
    for attempt in (first, second):
        for step in attempt:
            if step == "effect_applied":
                break
    return first, second


def balance(store: Store) -> tuple[int, int]:
    return tuple(store.one("SELECT balance, version FROM accounts WHERE name = 'acct-1'"))


def accounts_credited(store: Store):
    return [e for e in store.events() if e.type == "account.credited"]


def test_compare_and_set_refuses_a_write_computed_from_a_stale_read():
    queue, _ = new_queue(GUARDED)
    first, second = two_overlapping_credits(queue)

    assert list(first) == ["committed", "acked"]
    assert balance(queue.store) == (170, 1)
    assert list(second) == ["failed"]  # read 120 at version 0; the row is at version 1

    assert balance(queue.store) == (170, 1)  # nothing of the refused write landed
    assert [e.job_id for e in accounts_credited(queue.store)] == [1]
    job = queue.get(2)
    assert (job.state, job.attempts) == ("PENDING", 1)
    assert job.last_error == (
        "Conflict: account acct-1 changed since it was read (read at version 0, now 1)"
    )
    assert queue.marks["cas.conflict"] == 1
    assert invariants.check(queue.store) == []


def test_the_retry_reads_afresh_and_both_credits_count():
    queue, clock = new_queue(GUARDED)
    first, second = two_overlapping_credits(queue)
    list(first), list(second)

    clock.advance(60.0)  # past any backoff
    assert Worker("w2", queue, {"top_up": top_up}).run_one() == [
        "leased",
        "started",
        "effect_applied",
        "committed",
        "acked",
    ]

    assert balance(queue.store) == (200, 2)
    assert invariants.check(queue.store, final=True) == []


def test_without_compare_and_set_the_second_write_erases_the_first():
    queue, _ = new_queue(UNGUARDED)
    first, second = two_overlapping_credits(queue)
    list(first), list(second)

    assert balance(queue.store) == (150, 2)  # 120 + 30: order 1001's 50 points are gone
    credited = accounts_credited(queue.store)
    assert [(e.detail["read"], e.detail["balance"]) for e in credited] == [
        ([120, 0], [120, 170]),
        ([120, 0], [170, 150]),  # the log shows it: a credit of 30 that took 20 away
    ]
    [violation] = invariants.check(queue.store, only=["INV_008"])
    assert violation.message == (
        "account acct-1 holds 150, but its opening balance 120 plus its 2 recorded credits "
        "come to 200: an update was lost"
    )
    opened = queue.store.events()[0].seq
    assert violation.evidence.jobs == (1, 2)
    assert violation.evidence.executions == (1, 2)
    assert violation.evidence.events == (opened, *(e.seq for e in credited))


def test_a_balance_changed_without_a_credit_is_reported_too():
    queue, _ = new_queue(GUARDED)
    accounts.open_account(queue.store, 0.0, "acct-1", 120)
    queue.store.all("UPDATE accounts SET balance = 1000 WHERE name = 'acct-1'")

    [violation] = invariants.check(queue.store)
    assert violation.inv == "INV_008"
    assert violation.message.endswith("come to 120: money appeared from nowhere")


def test_a_credit_to_an_account_nobody_opened_fails_its_attempt():
    queue, _ = new_queue(GUARDED)
    queue.submit("top_up", {"order": 1001, "amount": 50})

    assert Worker("w1", queue, {"top_up": top_up}).run_one() == ["leased", "started", "failed"]
    assert queue.get(1).last_error == "LookupError: no account 'acct-1'"


def test_an_account_is_opened_once():
    queue, _ = new_queue(GUARDED)
    accounts.open_account(queue.store, 0.0, "acct-1", 120)

    with pytest.raises(UsageError, match="already open"):
        accounts.open_account(queue.store, 0.0, "acct-1", 0)


def test_a_database_from_before_accounts_is_checked_read_only_without_error(tmp_path):
    """Schema 1 had no accounts table: checking such a file, read-only, must not need it."""
    path = tmp_path / "v1.db"
    schema_1_file(path)

    store = Store.open(path, read_only=True)

    assert store.schema_version() == 1
    assert invariants.check(store, final=True) == []


def test_compare_and_set_raises_conflict_inside_the_transaction():
    """The write half alone: a version moved on means `Conflict`, and nothing is written."""
    queue, _ = new_queue(GUARDED)
    accounts.open_account(queue.store, 0.0, "acct-1", 120)
    stale = accounts.read(queue.store, accounts.credit("acct-1", 50, "top-up-1001"))
    queue.store.all("UPDATE accounts SET version = 1 WHERE name = 'acct-1'")

    with pytest.raises(Conflict), queue.store.transaction() as tx:
        accounts.write(tx, 0.0, stale, compare_and_set=True)

    assert balance(queue.store) == (120, 1)
    assert accounts_credited(queue.store) == []
