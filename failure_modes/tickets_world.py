"""The tickets service's explored world, shared by its failure modes (FM_016 to FM_019).

An agent opens tickets and changes each one three times (in progress, a note, closed),
one command a step; two workers are the projectors; a reader reads tickets from the read
model as they go, and (where a failure mode needs one) a rebuilder rebuilds the read model
by replay, one ticket a step (runtime.tickets.world). Every fault site is in the mix, and
the agent may die between any two of its transactions (`client_crash`).
"""

from dataclasses import replace

from runtime.faults import SITES, FaultMix
from runtime.policies import Policies
from runtime.sim import RunResult, Scenario, worker_names
from runtime.tickets.projector import HANDLERS
from runtime.tickets.world import TicketsWorld

ATTEMPTS = 12
"""A projection is worth retrying: with the runtime's 3, the crashes, pauses and failed
transactions of every fault site now and then dead-letter one, and the read model then
trails its ticket for good; that is the runtime's dead letters at work, not a failure of
the read model (a redrive or a rebuild mends it)."""
MIX = FaultMix(sites=(*SITES, "client_crash"))
"""Every fault site, and the agent dying between its transactions."""


def world(
    policies: Policies,
    tickets: int,
    workers: int,
    mix: FaultMix = MIX,
    *,
    changes: int = 3,
    reads: int = 1,
    rebuilds: int = 0,
    reconcile: bool = False,
) -> Scenario:
    """`tickets` tickets, each opened and changed `changes` times by the agent, projected by
    `workers` workers, read by the reader (`reads` reads a command), and rebuilt `rebuilds`
    times during the run (with `reconcile`, a reconciliation each time, and a rebuild
    only when it finds damage)."""
    return Scenario(
        jobs=(),
        handlers=HANDLERS,
        workers=worker_names(workers),
        policies=replace(policies, attempts_max=ATTEMPTS),
        mix=mix,
        world=TicketsWorld(
            tickets, changes=changes, reads=reads, rebuilds=rebuilds, reconcile=reconcile
        ),
    )


# What a run logged, as the tests of these failure modes read it.


def reads(result: RunResult) -> list[tuple[int, int, int | None]]:
    """(seq, ticket, version seen) of every logged read; None: no row."""
    return [
        (e.seq, e.detail["ticket"], e.detail["version"])
        for e in result.events
        if e.type == "ticket.read"
    ]


def projections(result: RunResult, ticket: int = 1) -> list[tuple]:
    """(worker, job, version, the version it replaced or "skipped"), as the log tells each
    projection of `ticket` that reached the read model."""
    return [
        (
            e.worker,
            e.job_id,
            e.detail["version"],
            "skipped" if e.type == "ticket.projection_skipped" else e.detail["replaced"],
        )
        for e in result.events
        if e.type in ("ticket.projected", "ticket.projection_skipped")
        and e.detail["ticket"] == ticket
    ]
