"""INV_008: a balance equals its opening balance plus every credit recorded against it."""

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.store import Event

# --- INV_008 -------------------------------------------------------------------------

_BALANCES = (
    "SELECT a.name, a.balance, a.opened_balance,"
    " coalesce(sum(json_extract(e.detail, '$.amount')), 0), count(e.id),"
    " coalesce(group_concat(e.job_id), ''), coalesce(group_concat(e.execution_id), '')"
    " FROM accounts a LEFT JOIN effects e"
    " ON e.sink = 'accounts' AND json_extract(e.detail, '$.account') = a.name"
    " GROUP BY a.name ORDER BY a.name"
)
"""Per account: its balance, its opening balance, and the sum and count of the credits
recorded against it (with the jobs and executions that applied them)."""


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
    violations = []
    for name, balance, opened, credited, count, jobs, executions in m.store.tuples(_BALANCES):
        expected = opened + credited
        if balance == expected:
            continue
        credits = m.credits.get(name, [])
        violations.append(
            Violation(
                "INV_008",
                f"account {name} holds {balance}, but its opening balance {opened} plus its "
                f"{count} recorded credits come to {expected}: "
                + ("an update was lost" if balance < expected else "money appeared from nowhere"),
                Evidence(
                    tuple(sorted({int(j) for j in jobs.split(",") if j})),
                    tuple(sorted({int(x) for x in executions.split(",") if x})),
                    (m.accounts_opened[name], *(e.seq for e in credits)),
                ),
            )
        )
    return violations
