"""FM_021, the break: the row is written at the commit, the counts wait for the ack.

Baseline = GUARDED with exactly one lever off (`atomic_projection`). A projection has two
writes: the ticket's row in `ticket_views` and the status counts in `ticket_status_counts`.
The row is written at the job's commit, with the record that the job's effect was
applied; the count moves are kept in memory for the ack, a second transaction. w1
projects ticket 1, commits, and dies before its ack. The lease runs out, the reaper hands
job 1 back, and the retry does what the commit boundary (FM_001) says it must: it finds
the job's effect recorded and absorbs it. The projection is not done again, so the
retry's ack has nothing to count. Job 1 SUCCEEDED, the row is right, and the counts say
there is no ticket at all. INV_012 names the counts, and the ticket's change and
projection as evidence.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_021_partial_projection import scenario
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.faults import CRASH_STEPS, FaultMix
from runtime.policies import GUARDED
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, views
from runtime.tickets.world import AGENT

BASELINE = GUARDED.without("atomic_projection")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
LEASE_RUNS_OUT = BASELINE.lease_s + 1
COUNTS = "the status counts say none, but the write model has 1 open"


def one_ticket(changes: int = 0) -> Simulation:
    """The agent and ticket 1 (changed `changes` times), one projector, no fault: the
    scripted world."""
    return Simulation(0, tickets_world.world(BASELINE, 1, 1, QUIET, changes=changes))


def row(store) -> tuple | None:
    """Ticket 1's read-model row: (id, status, version), or None."""
    view = views.get_view(store, 1)
    return None if view is None else (view.id, view.status, view.version)


def event(result: RunResult, seq: int):
    [found] = [e for e in result.events if e.seq == seq]
    return found


def absorbed(result: RunResult) -> list[tuple]:
    """(execution, job, the execution whose effect it found) of every absorbed repeat."""
    return [
        (e.execution_id, e.job_id, e.detail["first_execution"])
        for e in result.events
        if e.type == "effect.absorbed"
    ]


def unacked_projections(result: RunResult) -> list[tuple]:
    """(execution, job, ticket, version) of every projection that wrote its row and whose
    execution never acked: its count moves were never written."""
    acked = {e.execution_id for e in result.events if e.type == "job.succeeded"}
    return [
        (e.execution_id, e.job_id, e.detail["ticket"], e.detail["version"])
        for e in result.events
        if e.type == "ticket.projected" and e.execution_id not in acked
    ]


@functools.cache
def explored(seed: int) -> RunResult:
    return scenario.run(BASELINE, seed)


def test_the_row_is_written_and_the_counts_never_move():
    result = scenario.run(BASELINE)

    found = [v for v in result.violations if v.inv == "INV_012"]
    assert [v.message for v in found] == [COUNTS]
    # The evidence: ticket 1's projection job, its change (seq 1) and its projection (seq 6).
    assert (found[0].evidence.jobs, found[0].evidence.events) == ((1,), (1, 6))
    changed, projected = event(result, 1), event(result, 6)
    assert (changed.type, changed.detail["ticket"], changed.detail["version"]) == (
        "ticket.changed",
        1,
        1,
    )
    assert (projected.type, projected.worker, projected.execution_id) == (
        "ticket.projected",
        "w1",
        1,
    )
    # Half projected: the row is exactly what projecting ticket 1 gives; the counts are empty.
    assert row(result.store) == (1, "open", 1)
    assert views.status_counts(result.store) == {}
    assert result.violated() == ["INV_012"]


def test_w1_died_between_its_commit_and_its_ack_and_the_retry_was_absorbed():
    """The timeline from w1's commit on. The row is written at seq 6, in the commit's
    transaction (seqs 5-7). w1 dies after `committed`. Its lease runs out and the reaper
    aborts execution 1 and hands job 1 back. The retry, execution 2, finds job 1's effect
    recorded (by execution 1) and absorbs it: nothing is projected again. Its ack
    succeeds the job, with no count to write. The projection ran once and was counted
    never."""
    result = scenario.run(BASELINE)

    timeline = [(e.seq, e.type, e.worker, e.execution_id) for e in result.events[4:]]
    assert timeline == [
        (5, "effect.applied", "w1", 1),
        (6, "ticket.projected", "w1", 1),
        (7, "execution.committed", "w1", 1),
        (8, "fault.crash", "w1", None),
        (9, "lease.expired", "reaper", 1),
        (10, "reaper.swept", "reaper", None),
        (11, "job.leased", "w1", 2),
        (12, "execution.started", "w1", 2),
        (13, "effect.absorbed", "w1", 2),
        (14, "execution.committed", "w1", 2),
        (15, "job.succeeded", "w1", 2),
    ]
    assert event(result, 8).detail["after"] == "committed"
    assert event(result, 9).detail["execution_state"] == ["COMMITTED", "ABORTED"]
    assert absorbed(result) == [(2, 1, 1)]
    assert unacked_projections(result) == [(1, 1, 1, 1)]
    assert views.status_counts(result.store) == {}  # no transaction in it moved a count
    assert result.steps == 10  # the agent's step, w1's four, the retry's five


def test_between_the_commit_and_the_ack_the_row_is_there_and_the_counts_are_not():
    """Step by step. After w1's commit the row is in the read model and the count move
    (open +1) is only in memory, waiting for the ack. INV_012 says nothing yet: job 1 is
    RUNNING, and while a projection is in flight the read model may trail. The crash
    takes the move with it; the reaper makes job 1 PENDING, the check still waits; the
    retry's ack makes the queue quiet, and the check finds the counts short."""
    sim = one_ticket()
    assert sim.act(AGENT) == "committed"  # ticket 1 and job 1, in one transaction
    assert (row(sim.store), views.status_counts(sim.store)) == (None, {})

    assert sim.step("w1", until="committed") == "committed"
    assert row(sim.store) == (1, "open", 1)
    assert views.status_counts(sim.store) == {}
    assert sim.queue._deferred_counts == {1: [("open", 1)]}  # execution 1's move, in memory
    assert sim.violations == []

    sim.crash("w1")
    sim.advance(LEASE_RUNS_OUT)
    assert sim.reap() == [1]
    assert sim.violations == []
    sim.drain("w1")

    assert [v.message for v in sim.violations] == [COUNTS]


def test_without_the_crash_the_ack_writes_the_counts():
    """The same schedule without the crash: w1 commits and acks, and the ack writes the
    move it kept. The baseline is right whenever the ack comes; the window is only
    between the commit and the ack."""
    sim = one_ticket()
    sim.act(AGENT)
    sim.step("w1", until="committed")
    assert views.status_counts(sim.store) == {}
    sim.drain("w1")  # the ack, with the count move
    result = sim.finish()

    assert result.violations == []
    assert views.status_counts(result.store) == {"open": 1}
    assert result.store.tuples("SELECT state, attempts FROM jobs") == [("SUCCEEDED", 1)]


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_only_a_crash_between_the_commit_and_the_ack_breaks_it(step):
    """w1 dies after each step of its attempt in turn. Before the commit nothing was
    written, so the retry projects the ticket whole and its own ack counts it. Only after
    `committed` is there a row without its count, and a retry that, rightly, absorbs it."""
    sim = one_ticket()
    sim.act(AGENT)
    sim.step("w1", until=step)
    sim.crash("w1")
    sim.advance(LEASE_RUNS_OUT)
    assert sim.reap() == [1]
    sim.drain("w1")
    result = sim.finish()

    assert row(result.store) == (1, "open", 1)
    if step == "committed":
        assert [v.message for v in result.violations] == [COUNTS]
        assert absorbed(result) == [(2, 1, 1)]
    else:
        assert result.violations == [], step
        assert views.status_counts(result.store) == {"open": 1}
        assert absorbed(result) == []


def test_a_lease_that_runs_out_is_enough_without_a_crash():
    """No crash: w1 stalls after its commit past its lease (a pause, a slow disk). The
    reaper hands job 1 back, and w1's ack, when it comes, is refused by the fence
    (`lease.lost`), as it must be: the job is no longer w1's. The refused ack was the only
    one that would have written the move; the retry absorbs the effect, and its ack has
    nothing to write. The move stays in memory of a process that is still running."""
    sim = one_ticket()
    sim.act(AGENT)
    sim.step("w1", until="committed")
    sim.advance(LEASE_RUNS_OUT)
    assert sim.reap() == [1]
    assert sim.step("w1") == "lease_lost"  # the ack, refused
    sim.drain("w1")
    result = sim.finish()

    [refused] = [e for e in result.events if e.type == "lease.lost"]
    assert (refused.execution_id, refused.detail["action"]) == (1, "ack")
    assert absorbed(result) == [(2, 1, 1)]
    assert [v.message for v in result.violations] == [COUNTS]
    assert sim.queue._deferred_counts == {}  # the refused ack took them, and wrote nothing


def test_every_job_succeeded_and_the_projector_looks_healthy():
    """Job 1 SUCCEEDED at its second attempt; its first is ABORTED, not FAILED, so the
    projector reports no error, no backlog and no dead letter, and the one lag sample is
    0 ms (the row landed the moment the ticket was opened). The rows are right, so a
    reconciliation that compares rows with the write model finds nothing damaged. Only
    the counts are wrong, and nothing on the dashboard says so."""
    result = scenario.run(BASELINE)

    assert result.store.tuples("SELECT state, attempts FROM jobs") == [("SUCCEEDED", 2)]
    assert result.store.tuples("SELECT id, status FROM executions") == [
        (1, "ABORTED"),
        (2, "DONE"),
    ]
    now = result.events[-1].at + 60
    stats = lag.projection(result.store, now)
    assert (stats.backlog, stats.errors, stats.dead, stats.samples) == (0, 0, 0, 1)
    assert (stats.lag_max_ms, stats.unprojected_oldest_ms) == (0.0, 0.0)
    assert lag.behind_ms(result.store, 1, 1, now) == 0.0
    assert views.reconcile(result.store, SimClock(now)) == []
    assert (row(result.store), views.status_counts(result.store)) == ((1, "open", 1), {})


def test_the_next_change_does_not_mend_the_counts():
    """The counts move by differences, so a later projection of the same ticket carries
    the loss forward: moving ticket 1 in progress takes 1 from `open`, which never had it.
    The counts say 1 in progress and -1 open; a count below zero is the loss showing."""
    sim = one_ticket(changes=1)
    sim.act(AGENT)
    sim.step("w1", until="committed")
    sim.crash("w1")
    sim.advance(LEASE_RUNS_OUT)
    sim.reap()
    sim.drain("w1")  # the retry, absorbed
    assert sim.act(AGENT) == "committed"  # ticket 1 in progress: version 2, job 2
    sim.drain("w1")
    result = sim.finish()

    assert row(result.store) == (1, "in_progress", 2)
    assert views.status_counts(result.store) == {"in_progress": 1, "open": -1}
    found = [(v.message, v.evidence.jobs, v.evidence.events) for v in result.violations]
    assert found == [
        (COUNTS, (1,), (1, 6)),
        (
            "the status counts say 1 in_progress, -1 open, but the write model has 1 in_progress",
            (1, 2),
            (16, 21),
        ),
    ]


def test_nothing_repairs_it_but_a_recount_from_the_rows():
    """Checked afresh on the final database alone, the counts are still short: `fmlab
    check` finds it in a real database. No job is left to run. A rebuild, which recounts
    the statuses from the rows it swaps in, puts the counts right."""
    result = scenario.run(BASELINE)
    assert [v.message for v in invariants.check(result.store, final=True)] == [COUNTS]

    views.rebuild(result.store, SimClock(result.events[-1].at + 60))

    assert views.status_counts(result.store) == {"open": 1}
    assert invariants.check(result.store, final=True) == []


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_within_four_seeds():
    """Two tickets, each opened and changed three times, two projectors, every fault site:
    seeds 0-2 hold, seed 3 breaks (208 of the first 500 seeds do)."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    assert summary.failing == {"INV_012": [3]}, summary.failing


def test_explored_seed_3_loses_its_counts_to_failed_acks_not_to_a_crash():
    """Seed 3: no projector dies after a commit. Twice, w1 commits a projection and its
    next transaction, the ack, fails to begin ("database is locked", fault site
    `db_error`); the attempt ends, w1 goes on to other jobs, and the moves stay in memory
    with no ack to write them. The reaper hands both jobs back and both retries are
    absorbed. One of the two lost nothing (ticket 1's note, landing on a row already in
    progress: -1 and +1 of the same status); the other lost ticket 2's move from open to
    in progress. When ticket 2 is closed, `in_progress` loses the 1 it never had."""
    result = explored(3)

    assert unacked_projections(result) == [(3, 3, 1, 3), (6, 6, 2, 2)]
    events = result.events
    for execution in (3, 6):  # right after each commit, the next transaction fails
        at = next(
            i
            for i, e in enumerate(events)
            if e.type == "execution.committed" and e.execution_id == execution
        )
        assert (events[at + 1].type, events[at + 1].worker) == ("fault.db_error", "w1")
    assert absorbed(result) == [(10, 3, 3), (11, 6, 6)]
    assert [e.detail["after"] for e in result.events if e.type == "fault.crash"] == ["leased"]
    assert [v.message for v in result.violations] == [
        "the status counts say 2 closed, -1 in_progress, 1 open, but the write model has 2 closed"
    ]
    [found] = result.violations
    assert found.evidence.jobs == (1, 2, 3, 4, 5, 6, 7, 8)
    assert found.evidence.events == (11, 26, 42, 61)
    states = result.store.tuples("SELECT DISTINCT state FROM jobs")
    assert states == [("SUCCEEDED",)]


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_one_failed_ack():
    """Shrunk: one ticket, one worker, 24 steps. The decisions that matter: fault sites
    `db_error` and `client_crash` switched on; the agent, twice, going before w1 and dying
    (so the ticket's next command is its closing); and a failed transaction right after
    w1 commits the creation's projection. The ack never happens, the retry is absorbed,
    and the closing takes 1 from `open`, which was never given it."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=jobs, workers=workers), "INV_012")
    assert shrunk.steps == 24, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 1)

    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    assert [(c.label, c.value) for c in result.decisions() if c.value] == [
        ("switch on db_error", 1),
        ("switch on client_crash", 1),
        ("next: w1 | agent | reader", 1),
        ("agent crash: none | client_crash", 1),
        ("next: w1 | agent | reader", 1),
        ("agent crash: none | client_crash", 1),
        ("fault after w1 committed: none | db_error", 1),
    ]
    kinds = [(e.type, e.execution_id) for e in result.events]
    at = kinds.index(("execution.committed", 1))
    assert kinds[at + 1] == ("fault.db_error", None)  # the ack's transaction never began
    assert unacked_projections(result) == [(1, 1, 1, 1)]
    assert absorbed(result) == [(3, 1, 1)]
    assert [v.message for v in result.violations] == [
        "the status counts say 1 closed, -1 open, but the write model has 1 closed"
    ]
