"""FM_017, the break: a late projection of an older version overwrites a newer one.

Baseline = GUARDED with exactly one lever off (`version_guard`). The agent opens ticket 1
(version 1, projection job 1) and moves it in progress (version 2, job 2). Two projectors
take one job each; w1, with job 1, is slower. Version 2 lands, the reader sees "in
progress"; then version 1 lands on top of it, because nothing asks whether it is newer,
and the reader sees "open" again. No job is left that would put version 2 back, so the
read model stays one version behind its ticket for good, with nothing failed, nothing
retried and no backlog. INV_012 names both halves: the read that went back, and, once the
queue is quiet, the row that differs from the projection of the write model.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_017_out_of_order_projection import scenario
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.faults import FaultMix
from runtime.policies import GUARDED, Policies
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, views
from runtime.tickets.world import AGENT, READER

BASELINE = GUARDED.without("version_guard")
BUILD = functools.partial(scenario.scenario, BASELINE)
QUIET = FaultMix(sites=())
"""No fault site: whatever goes wrong, the schedule did it."""
ROW = "ticket 1's read-model row has status 'open' instead of 'in_progress', version 1 instead of 2"
COUNTS = "the status counts say 1 open, but the write model has 1 in_progress"
WENT_BACK = "ticket 1 was read at version 2, then at version 1: the read model went back"


def two_commands(policies: Policies = BASELINE, workers: int = 2) -> Simulation:
    """The scripted world, up to the agent's two commands: ticket 1 is created (version 1,
    job 1) and moved in progress (version 2, job 2); both jobs wait in the queue."""
    world = tickets_world.world(policies, 1, workers, QUIET, changes=1)
    sim = Simulation(0, world)
    sim.act(AGENT)
    sim.act(AGENT)
    return sim


def row(store) -> tuple:
    """Ticket 1's read-model row: (status, version)."""
    view = views.get_view(store, 1)
    assert view is not None
    return view.status, view.version


def event(result: RunResult, seq: int):
    [found] = [e for e in result.events if e.seq == seq]
    return found


def test_the_late_projection_takes_the_read_model_back():
    result = scenario.run(BASELINE)

    found = [v for v in result.violations if v.inv == "INV_012"]
    assert sorted(v.message for v in found) == sorted([ROW, COUNTS, WENT_BACK])
    by_message = {v.message: v.evidence for v in found}
    # The wrong row: the ticket's two projection jobs, its latest change (version 2,
    # seq 3) and its latest projection, which wrote version 1 over version 2 (seq 15).
    assert by_message[ROW].jobs == (1, 2)
    assert by_message[ROW].events == (3, 15)
    assert by_message[COUNTS] == by_message[ROW]
    changed, projected = event(result, 3), event(result, 15)
    assert (changed.type, changed.detail["version"]) == ("ticket.changed", 2)
    assert (projected.type, projected.worker, projected.job_id) == ("ticket.projected", "w1", 1)
    assert (projected.detail["version"], projected.detail["replaced"]) == (1, 2)
    # The read that went back: the reader's two reads, version 2 (seq 12), then 1 (seq 18).
    assert by_message[WENT_BACK].events == (12, 18)
    reads = [event(result, seq).detail for seq in (12, 18)]
    assert reads == [{"ticket": 1, "version": 2}, {"ticket": 1, "version": 1}]
    assert result.violated() == ["INV_012"]


def test_version_2_lands_first_and_version_1_overwrites_it():
    """The jobs are leased oldest first, so w1 holds job 1 (version 1) and w2 job 2
    (version 2). w2 finishes first: the row is in progress at version 2. Then w1 finishes,
    and its write goes through unasked: the row is open at version 1 again, and the status
    counts moved with it."""
    sim = two_commands()
    assert sim.step("w1", until="leased") == "leased"
    sim.drain("w2")
    assert row(sim.store) == ("in_progress", 2)
    assert views.status_counts(sim.store) == {"in_progress": 1}

    sim.drain("w1")  # the late delivery of version 1

    assert row(sim.store) == ("open", 1)
    assert views.status_counts(sim.store) == {"open": 1}
    leased = [(e.worker, e.job_id) for e in sim.store.events() if e.type == "job.leased"]
    assert leased == [("w1", 1), ("w2", 2)]
    assert "ticket.projection_skipped" not in [e.type for e in sim.store.events()]


def test_nothing_failed_and_nothing_looks_behind():
    """Both jobs SUCCEEDED at their first attempt; no backlog, no error, no dead letter,
    and the projection lag (per version, from its commit to the first projection that
    covered it) is 0 ms for both versions: version 2's projection covered both, and the
    late write of version 1 adds no sample. Only a read's own measure sees it: a minute
    on, the row has lacked version 2 for 60,000 ms, against a contract of 500."""
    result = scenario.run(BASELINE)

    jobs = result.store.tuples("SELECT id, state, attempts, last_error FROM jobs ORDER BY id")
    assert [tuple(job) for job in jobs] == [(1, "SUCCEEDED", 1, None), (2, "SUCCEEDED", 1, None)]
    stats = lag.projection(result.store)
    assert (stats.backlog, stats.errors, stats.dead) == (0, 0, 0)
    assert lag.lag_samples_ms(result.store) == [0.0, 0.0]
    _, version = row(result.store)
    assert lag.behind_ms(result.store, 1, version, result.events[-1].at + 60) == 60_000
    assert lag.READ_LAG_MS == 500


def test_the_read_model_stays_wrong_for_good():
    """Nothing comes to mend it: every job is done, and no projector has anything to
    run. Checked afresh on the final database alone, the row and the counts still differ
    from the projection of the write model (and the log still holds the read that went
    back). A rebuild by replay, from the write model, is what puts version 2 back."""
    result = scenario.run(BASELINE)
    found = [v.message for v in invariants.check(result.store, final=True)]
    assert sorted(found) == sorted([ROW, COUNTS, WENT_BACK])
    assert result.store.one("SELECT count(*) FROM jobs WHERE state != 'SUCCEEDED'")[0] == 0

    views.rebuild(result.store, SimClock(result.events[-1].at + 60))

    assert row(result.store) == ("in_progress", 2)
    assert [v.message for v in invariants.check(result.store, final=True)] == [WENT_BACK]


def test_one_worker_is_enough_a_retry_after_a_crash_arrives_late():
    """No second projector: w1 takes job 1 and dies before its commit. Its lease still
    holds job 1, so w1, back at once, takes job 2 and lands version 2. The lease runs out,
    the reaper hands job 1 back, and w1 runs it again: version 1 lands on version 2.
    At-least-once redelivery reorders by itself."""
    sim = two_commands(workers=1)
    sim.step("w1", until="effect_applied")
    sim.crash("w1")
    sim.drain("w1")  # job 2: version 2 lands
    sim.act(READER)
    sim.advance(31)  # past job 1's 30 s lease
    assert sim.reap() == [1]
    sim.drain("w1")  # job 1's retry: version 1 lands on top
    sim.act(READER)
    result = sim.finish()

    assert sorted(v.message for v in result.violations) == sorted([ROW, COUNTS, WENT_BACK])
    late = [e for e in result.events if e.type == "ticket.projected" and e.detail["version"] == 1]
    assert [(e.job_id, e.execution_id, e.detail["replaced"]) for e in late] == [(1, 3, 2)]
    assert row(result.store) == ("open", 1)


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_on_the_first_seed():
    """Two tickets, each opened and changed three times, two projectors, every fault site:
    seed 0 already breaks (387 of the first 500 seeds do)."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    assert summary.failing == {"INV_012": [0]}, summary.failing


def test_explored_seed_0_shows_a_closed_ticket_in_progress_for_good():
    """Seed 0: ticket 2's versions 3 (the note, job 7) and 4 (closed, job 8) are leased by
    w2 and w1 in that order; w1 lands version 4 first (seq 66), w2 lands version 3 on top
    of it (seq 70). The ticket is closed; the read model says in progress, and counts it
    so. No fault was needed for the reorder: w2 was merely slower."""
    result = scenario.run(BASELINE, 0)

    projected = [
        (e.seq, e.worker, e.job_id, e.detail["version"], e.detail["replaced"])
        for e in result.events
        if e.type == "ticket.projected" and e.detail["ticket"] == 2
    ]
    assert projected[-2:] == [(66, "w1", 8, 4, 2), (70, "w2", 7, 3, 4)]
    view = views.get_view(result.store, 2)
    assert view is not None and (view.status, view.version) == ("in_progress", 3)
    messages = [v.message for v in result.violations]
    assert len(messages) == 2
    assert messages[0].startswith(
        "ticket 2's read-model row has status 'in_progress' instead of 'closed',"
        " version 3 instead of 4"
    )
    assert messages[1] == (
        "the status counts say 1 closed, 1 in_progress, but the write model has 2 closed"
    )
    assert [v.evidence.jobs for v in result.violations] == [(5, 6, 7, 8)] * 2


def test_explored_readers_see_it_go_back_too():
    """Most explored failures are a wrong row at quiet; a reader catching the row between
    the newer write and the late one is rarer. The first seed where one does is 117:
    ticket 1 read at version 2, then at version 1."""
    went_back = next(
        seed
        for seed in range(200)
        if any("went back" in v.message for v in scenario.run(BASELINE, seed).violations)
    )
    assert went_back == 117
    messages = [v.message for v in scenario.run(BASELINE, 117).violations]
    assert WENT_BACK in messages


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_two_decisions():
    """Shrunk: one ticket, two workers, 12 steps, and two decisions that are not the
    plainest. After the agent creates the ticket, w2 (not w1) takes the first step and
    leases job 1; after w2 has started it, the agent (not w2) goes next and moves the
    ticket in progress. Everything else is the plainest answer: w1 leases job 2 and
    finishes it, then w2 finishes job 1, late. No fault, no reader: the row checked at
    quiet is enough."""
    jobs, workers = scenario.META.world
    summary = explore(BUILD, range(scenario.META.found_within), jobs=jobs, workers=workers)
    shrunk = shrink(BUILD, summary.first_failure.case(jobs=jobs, workers=workers), "INV_012")
    assert shrunk.steps == 12, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 2)

    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    assert [(c.label, c.value) for c in result.decisions() if c.value] == [
        ("next: w1 | w2 | agent | reader", 1),
        ("next: w2 | agent | reader", 1),
    ]
    assert [
        (e.worker, e.job_id, e.detail["version"], e.detail["replaced"])
        for e in result.events
        if e.type == "ticket.projected"
    ] == [("w1", 2, 2, 0), ("w2", 1, 1, 2)]
    assert sorted(v.message for v in result.violations) == sorted([ROW, COUNTS])
    assert "fault" not in " ".join(e.type for e in result.events)
