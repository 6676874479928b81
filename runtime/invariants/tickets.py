"""INV_012: the tickets service's read model (runtime.tickets, chapter 09).

Once no projection job is waiting or running, the read model must equal the projection of
the write model: one row per ticket, each exactly what projecting the ticket's current
state gives, and status counts that count those rows. While projections are in flight it
may trail the write model (that is the contract, runtime.tickets.lag), but a reader must
never see it go back: a ticket read at one version is never read later at an older one,
nor found missing. Readers that want their reads checked log them (`ticket.read`).

A row the service itself has found damaged (`ticket.views_suspect`, runtime.tickets.views
.reconcile) is under repair: it is not compared until a rebuild that started after the
finding has swapped in. Then it must be right again (FM_022).
"""

from typing import Any

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.store import Event
from runtime.tickets.model import PROJECT, all_tickets
from runtime.tickets.projection import VIEW_COLUMNS, view_row

FOLDS_ON = frozenset(
    {
        "ticket.changed",
        "ticket.projected",
        "ticket.projection_skipped",
        "ticket.rebuild_started",
        "ticket.views_suspect",
        "ticket.views_rebuilt",
        "ticket.read",
        "job.succeeded",
        "job.dead",
    }
)


def fold_tickets(m: Monitor, event: Event) -> None:
    """Note that the read model may have changed, and check each logged read against the
    newest version the same reader saw of that ticket before."""
    if event.type.startswith("ticket."):
        m.tickets_seen = True
    if not m.tickets_seen:
        return
    m.tickets_touched = True
    if event.type == "ticket.views_suspect":
        for ticket in event.detail["tickets"]:
            m.ticket_suspects[ticket] = event.seq
        return
    if event.type == "ticket.views_rebuilt":
        started = event.detail["started"]
        m.ticket_suspects = {t: seq for t, seq in m.ticket_suspects.items() if seq > started}
        return
    if event.type != "ticket.read":
        return
    ticket, version = event.detail["ticket"], event.detail["version"]
    seen = m.ticket_reads.get(ticket)
    if seen is not None and (version is None or version < seen.detail["version"]):
        shown = "no row" if version is None else f"version {version}"
        m.found_in_log["INV_012"].append(
            Violation(
                "INV_012",
                f"ticket {ticket} was read at version {seen.detail['version']}, then at"
                f" {shown}: the read model went back",
                Evidence(_evidence(m, ticket).jobs, (), (seen.seq, event.seq)),
            )
        )
    if version is not None and (seen is None or version > seen.detail["version"]):
        m.ticket_reads[ticket] = event


def check_read_model(m: Monitor, final: bool) -> list[Violation]:
    """INV_012: the read model equals the projection of the write model once the queue is
    quiet, and a read's version never decreases."""
    violations = list(m.found_in_log.get("INV_012", ()))
    if final:  # damage found must be mended by the end: a rebuild after it swapped in
        violations += [
            Violation(
                "INV_012",
                f"ticket {ticket}'s read-model row was found damaged and no rebuild since"
                " has swapped in",
                Evidence(_evidence(m, ticket).jobs, (), (seq,)),
            )
            for ticket, seq in sorted(m.ticket_suspects.items())
        ]
    if not (m.tickets_touched or (final and m.tickets_seen)):
        return violations
    m.tickets_touched = False
    busy = m.store.one(
        "SELECT count(*) FROM jobs WHERE kind = ? AND state IN ('PENDING', 'RUNNING')", (PROJECT,)
    )[0]
    if busy:
        return violations
    return violations + _differences(m)


def _differences(m: Monitor) -> list[Violation]:
    store = m.store
    given = {t.id: view_row(t.state()) for t in all_tickets(store)}
    stored = {
        row[0]: tuple(row)
        for row in store.tuples(f"SELECT {', '.join(VIEW_COLUMNS)} FROM ticket_views")
    }
    violations = []
    for ticket in sorted(given.keys() | stored.keys()):
        want, have = given.get(ticket), stored.get(ticket)
        if want == have or ticket in m.ticket_suspects:
            continue
        violations.append(
            Violation("INV_012", _difference(ticket, want, have), _evidence(m, ticket))
        )
    counted: dict[str, int] = {}
    for row in given.values():
        counted[row[2]] = counted.get(row[2], 0) + 1
    counts = {
        s: n for s, n in store.tuples("SELECT status, tickets FROM ticket_status_counts") if n
    }
    if counts != counted:
        miscounted = [
            t for t in sorted(given) if stored.get(t) is None or stored[t][2] != given[t][2]
        ] or sorted(given)
        behind = [_evidence(m, ticket) for ticket in miscounted]
        violations.append(
            Violation(
                "INV_012",
                f"the status counts say {_counts(counts)}, but the write model has"
                f" {_counts(counted)}",
                Evidence(
                    tuple(job for e in behind for job in e.jobs),
                    (),
                    tuple(sorted(seq for e in behind for seq in e.events)),
                ),
            )
        )
    return violations


def _difference(ticket: int, want: tuple[Any, ...] | None, have: tuple[Any, ...] | None) -> str:
    if have is None:
        return (
            f"ticket {ticket} is in the write model at version {want[5]} but not in the read model"
        )
    if want is None:
        return f"the read model holds ticket {ticket}, which the write model does not"
    wrong = [
        f"{name} {have[i]!r} instead of {want[i]!r}"
        for i, name in enumerate(VIEW_COLUMNS)
        if have[i] != want[i]
    ]
    return f"ticket {ticket}'s read-model row has " + ", ".join(wrong)


def _evidence(m: Monitor, ticket: int) -> Evidence:
    """The ticket's projection jobs, and its latest change and projection events."""
    jobs = tuple(
        row[0]
        for row in m.store.tuples(
            "SELECT id FROM jobs WHERE kind = ? AND json_extract(payload, '$.ticket') = ?"
            " ORDER BY id",
            (PROJECT, ticket),
        )
    )
    seqs = tuple(
        row[0]
        for row in m.store.tuples(
            "SELECT max(seq) FROM events WHERE type IN ('ticket.changed', 'ticket.projected')"
            " AND json_extract(detail, '$.ticket') = ? GROUP BY type ORDER BY 1",
            (ticket,),
        )
    )
    return Evidence(jobs, (), seqs)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
