"""INV_008: a balance equals its opening balance plus every credit recorded against it."""

import json
from collections import defaultdict

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.store import Event

# --- INV_008 -------------------------------------------------------------------------

_ACCOUNTS = "SELECT name, balance, opened_balance FROM accounts ORDER BY name"
_CREDITS = "SELECT job_id, execution_id, detail FROM effects WHERE sink = 'accounts' ORDER BY id"
"""The credits recorded against accounts; each one's detail names its account and amount.
Summed here, not in SQL: the sum is the check, and it reads the same on every backend."""


def fold_balances(m: Monitor, event: Event) -> None:
    """Note which accounts exist and their credits, so INV_008 reads the balances only
    when one may have changed."""
    if event.type == "account.opened":
        m.accounts_opened[event.detail["account"]] = event.seq
        m.accounts_touched = True
    elif event.type == "account.credited":
        m.credits[event.detail["account"]].append(event)
        m.accounts_touched = True


def check_balances(m: Monitor, final: bool) -> list[Violation]:
    """INV_008: a balance equals its opening balance plus every credit recorded against it.

    The balance is the row; the credits are the effect records, which say what was applied
    whatever the row says. A database with no account opened has nothing to check (and may
    predate the accounts table)."""
    if not m.accounts_opened or not (final or m.accounts_touched):
        return []
    m.accounts_touched = False
    recorded: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for job, execution, detail in m.store.tuples(_CREDITS):
        credit = json.loads(detail)
        recorded[credit["account"]].append((credit["amount"], job, execution))
    violations = []
    for name, balance, opened in m.store.tuples(_ACCOUNTS):
        applied = recorded.get(name, [])
        expected = opened + sum(amount for amount, _, _ in applied)
        if balance == expected:
            continue
        count = len(applied)
        credits = m.credits.get(name, [])
        violations.append(
            Violation(
                "INV_008",
                f"account {name} holds {balance}, but its opening balance {opened} plus its "
                f"{count} recorded credits come to {expected}: "
                + ("an update was lost" if balance < expected else "money appeared from nowhere"),
                Evidence(
                    tuple(sorted({job for _, job, _ in applied})),
                    tuple(sorted({execution for _, _, execution in applied})),
                    (m.accounts_opened[name], *(e.seq for e in credits)),
                ),
            )
        )
    return violations
