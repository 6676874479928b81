"""The invariants, as code: each checker reads durable state and the event log.

Prior art: Hypothesis invariants, TigerBeetle's "check on write, check again on read".
The runtime refuses bad writes as it makes them; these checkers verify again, from what
the database holds, that the guarantees held. A repro test asserts a named INV_XXX *is*
reported (with evidence: jobs, executions, event seqs); a prevent test asserts none are.
The same checkers run in tests, in the simulator after every step (runtime.monitor keeps
what they read up to date), and in `fmlab check`.

The rules live in modules by subject (jobs: INV_001 to INV_007, the queue's own rows and
log; balances, load, intent_log, tickets, contention), and this module holds them in order.

Checkers never read fault annotations (`fault.*` events): a failure must be detectable from
what the runtime itself recorded, not from what the test harness knows it broke.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.invariants.balances import check_balances, fold_balances
from runtime.invariants.contention import REFUSED, check_contention_waited, fold_refusals
from runtime.invariants.evidence import Evidence, Violation
from runtime.invariants.intent_log import (
    check_derived_fresh,
    check_intents_durable,
    fold_intents,
    fold_rebuilds,
)
from runtime.invariants.jobs import (
    APPEND_ONLY_TRIGGERS,
    check_effect_at_most_once,
    check_effects_recorded,
    check_failures_signalled,
    check_fencing,
    check_no_lost_or_lying_work,
    check_retries_bounded,
    check_transitions_logged,
    fold_fencing,
    fold_log,
)
from runtime.invariants.load import check_retry_load, fold_retry_load
from runtime.invariants.tickets import FOLDS_ON as TICKET_EVENTS
from runtime.invariants.tickets import check_read_model, fold_tickets
from runtime.monitor import Monitor
from runtime.store import Event, Store

__all__ = [
    "APPEND_ONLY_TRIGGERS",
    "BY_ID",
    "INVARIANTS",
    "Evidence",
    "Invariant",
    "Violation",
    "check",
]

# --- registry ------------------------------------------------------------------------

Checker = Callable[[Monitor, bool], list[Violation]]


@dataclass(frozen=True)
class Invariant:
    id: str
    statement: str
    kind: str
    checker: Checker
    fold: Callable[[Monitor, Event], None] | None = None
    """For a rule over the log itself: what it notes of each event as it is folded in."""
    folds_on: frozenset[str] | None = None
    """The event types its fold reads; None: every event."""


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "INV_001",
        "An effect (a sink and a key) is applied at most once.",
        "safety",
        check_effect_at_most_once,
    ),
    Invariant(
        "INV_002",
        "No irreversible effect without a durable record; a crash leaves detectable state.",
        "safety",
        check_effects_recorded,
    ),
    Invariant(
        "INV_003",
        "Only legal transitions, each one logged; the log is gap-free and append-only.",
        "safety",
        check_transitions_logged,
        fold_log,
    ),
    Invariant(
        "INV_004",
        "No lost and no lying work: every accepted job ends SUCCEEDED with its "
        "effect or DEAD with its reasons, and nothing stays RUNNING past its lease once "
        "the reaper ran.",
        "safety + liveness",
        check_no_lost_or_lying_work,
    ),
    Invariant(
        "INV_005",
        "Every failure leaves a detectable signal: an event carrying the error.",
        "safety",
        check_failures_signalled,
    ),
    Invariant(
        "INV_006",
        "Retries are bounded: at most max_attempts attempts between redrives.",
        "safety",
        check_retries_bounded,
    ),
    Invariant(
        "INV_007",
        "A holder of a lost lease cannot change state (fencing).",
        "safety",
        check_fencing,
        fold_fencing,
    ),
    Invariant(
        "INV_008",
        "A balance equals its opening balance plus every credit recorded against it.",
        "safety",
        check_balances,
        fold_balances,
        frozenset({"account.opened", "account.credited"}),
    ),
    Invariant(
        "INV_009",
        "Retries offered to a dependency stay within the bound it states for any window of time.",
        "safety",
        check_retry_load,
        fold_retry_load,
        frozenset({"dependency.declared", "dependency.called"}),
    ),
    Invariant(
        "INV_010",
        "An acknowledged intent survives any crash: it is in the intent log with its "
        "follow-up jobs, and no work exists for an intent the log does not hold.",
        "safety",
        check_intents_durable,
        fold_intents,
        frozenset({"intent.recorded", "job.submitted"}),
    ),
    Invariant(
        "INV_011",
        "Derived data equals a fresh recomputation from the log it was built from.",
        "safety",
        check_derived_fresh,
        fold_rebuilds,
        frozenset({"derived.rebuilt"}),
    ),
    Invariant(
        "INV_012",
        "Once the queue is quiet the read model equals the projection of the write model, "
        "and a read's version never decreases.",
        "safety",
        check_read_model,
        fold_tickets,
        TICKET_EVENTS,
    ),
    Invariant(
        "INV_013",
        "A busy database is waited for, never reported: no operation is refused because "
        "another writer held the lock.",
        "safety",
        check_contention_waited,
        fold_refusals,
        frozenset({REFUSED}),
    ),
)
BY_ID = {inv.id: inv for inv in INVARIANTS}


def check(
    store: Store, *, final: bool = False, only: Iterable[str] | None = None
) -> list[Violation]:
    """Run the invariants over `store`; `final=True` adds the end-of-run liveness checks."""
    return Monitor(store, INVARIANTS).check(final=final, only=only)
