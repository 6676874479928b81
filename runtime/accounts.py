"""Account balances: the one mutable number a job reads, adds to and writes back.

Every other effect in this runtime is a record appended once. A balance is different: a
credit must read the balance, add the amount and write the sum back, and if two credits
read the same balance the second write erases the first (a lost update). The defence is
compare-and-set on a version: the write goes through only if the row is still at the
version the credit read; otherwise `Conflict`, and the attempt is retried, reading afresh.

An account's credits are effects on the sink `accounts` (key: which credit; detail: the
account and the amount), so the effect record says what the balance should be: its
opening balance plus every credit recorded against it (INV_008).
"""

from typing import Any

from runtime.effects import Effect
from runtime.errors import Conflict, UsageError
from runtime.store import Store, Tx

SINK = "accounts"


def credit(account: str, amount: int, key: str) -> Effect:
    """The effect of adding `amount` to `account`, once per `key`."""
    return Effect(SINK, key, {"account": account, "amount": amount})


def open_account(store: Store, at: float, name: str, balance: int = 0) -> None:
    """Open an account with its opening balance, logged (`account.opened`)."""
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM accounts WHERE name = ?", (name,)) is not None:
            raise UsageError(f"account {name!r} is already open")
        tx.execute(
            "INSERT INTO accounts (name, balance, opened_balance) VALUES (?, ?, ?)",
            (name, balance, balance),
        )
        tx.event(at, "account.opened", account=name, balance=balance)


def read(store: Store, effect: Effect) -> Effect:
    """The read half of a credit's read-modify-write: `effect` with the balance and version
    its account had now (`read`), which the write half adds to."""
    name = effect.detail["account"]
    row = store.one("SELECT balance, version FROM accounts WHERE name = ?", (name,))
    if row is None:
        raise LookupError(f"no account {name!r}")
    return Effect(effect.sink, effect.key, {**effect.detail, "read": [row[0], row[1]]})


def write(tx: Tx, at: float, effect: Effect, *, compare_and_set: bool, **who: Any) -> None:
    """The write half: store the balance read plus the amount, and log the credit.

    With `compare_and_set` the write is refused (`Conflict`) when the version is no longer
    the one read. Without it the sum computed from the old read is written over whatever
    the balance has become since.
    """
    name, amount = effect.detail["account"], effect.detail["amount"]
    read_balance, read_version = effect.detail["read"]
    row = tx.one("SELECT balance, version FROM accounts WHERE name = ?", (name,))
    if row is None:
        raise LookupError(f"no account {name!r}")
    balance, version = row[0], row[1]
    written = read_balance + amount
    if compare_and_set:
        cursor = tx.execute(
            "UPDATE accounts SET balance = ?, version = version + 1 WHERE name = ? AND version = ?",
            (written, name, read_version),
        )
        if cursor.rowcount != 1:
            raise Conflict(
                f"account {name} changed since it was read (read at version {read_version},"
                f" now {version})"
            )
    else:
        tx.execute(
            "UPDATE accounts SET balance = ?, version = version + 1 WHERE name = ?",
            (written, name),
        )
    tx.event(
        at,
        "account.credited",
        **who,
        account=name,
        amount=amount,
        key=effect.key,
        read=[read_balance, read_version],
        balance=[balance, written],
        version=[version, version + 1],
    )
