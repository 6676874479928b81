"""FM_018, the break: the projector checks the version, then writes, and another commits between.

Baseline = GUARDED with exactly one lever off (`conditional_write`). The version guard of
FM_017 is still on: no projector writes a version it does not believe is newer. What it
believes comes from a read made as it runs the job (step `effect_applied`); its write comes
at its commit. w1 takes job 1 (ticket 1 at version 1) and reads the read model: no row, so
version 1 is newer. w2 takes job 2 and commits version 2. w1 commits version 1 on the
strength of its read, over version 2. The reader saw the ticket in progress and now sees
it open; both jobs SUCCEEDED, nothing was retried, nothing was skipped. INV_012 names the
read that went back and the row that is not the projection of its ticket.
"""

import functools

import pytest

from failure_modes import tickets_world
from failure_modes.FM_018_projector_race import scenario
from runtime import invariants
from runtime.clock import SimClock
from runtime.explore import explore
from runtime.invariants.evidence import Evidence
from runtime.policies import GUARDED
from runtime.report import describe
from runtime.shrink import replay, shrink
from runtime.sim import RunResult, Simulation
from runtime.tickets import lag, views
from runtime.tickets.world import AGENT, READER

BASELINE = GUARDED.without("conditional_write")
BUILD = functools.partial(scenario.scenario, BASELINE)
JOBS, WORKERS = scenario.META.world
ROW = "ticket 1's read-model row has status 'open' instead of 'in_progress', version 1 instead of 2"
COUNTS = "the status counts say 1 open, but the write model has 1 in_progress"
WENT_BACK = "ticket 1 was read at version 2, then at version 1: the read model went back"


def by_inv(result: RunResult, inv: str):
    return [v for v in result.violations if v.inv == inv]


def checks(store, ticket: int = 1) -> list[tuple]:
    """(job, execution, version carried, version read before the commit), for each recorded
    projection of `ticket`: the read travels in the effect, as a credit's balance does."""
    return store.tuples(
        "SELECT job_id, execution_id, json_extract(detail, '$.version'),"
        " json_extract(detail, '$.read_version') FROM effects"
        " WHERE json_extract(detail, '$.ticket') = ? ORDER BY id",
        (ticket,),
    )


def test_an_older_projection_overwrites_a_newer_one():
    result = scenario.run(BASELINE)

    wrong = by_inv(result, "INV_012")
    assert [v.message for v in wrong] == [ROW, COUNTS, WENT_BACK]
    assert [v.evidence for v in wrong] == [
        Evidence(jobs=(1, 2), events=(3, 15)),
        Evidence(jobs=(1, 2), events=(3, 15)),
        Evidence(jobs=(1, 2), events=(13, 18)),
    ]
    # The row's evidence: the ticket's latest change, and the projection that undid it.
    changed, projected = (result.events[seq - 1] for seq in (3, 15))
    assert (changed.type, changed.detail["version"], changed.detail["status"]) == (
        "ticket.changed",
        2,
        ["open", "in_progress"],
    )
    assert (projected.type, projected.worker, projected.job_id) == ("ticket.projected", "w1", 1)
    assert (projected.detail["version"], projected.detail["replaced"]) == (1, 2)
    # The read's evidence: the reader saw version 2, then version 1.
    first, second = (result.events[seq - 1] for seq in (13, 18))
    assert (first.type, first.detail["version"]) == ("ticket.read", 2)
    assert (second.type, second.detail["version"]) == ("ticket.read", 1)
    assert result.violated() == ["INV_012"]


def test_w1_wrote_on_a_check_made_before_w2_committed():
    """Both projectors checked the row while it was empty: version 1 and version 2 were
    each newer than nothing. w2 committed first (over no row); w1 committed second, over
    version 2, still trusting the empty row it had read. Its projection is on the record as
    one that replaced version 2 with version 1: a write no check at commit would allow.
    Nothing was skipped: the guard of FM_017 was asked, and answered from a stale read."""
    result = scenario.run(BASELINE)

    assert checks(result.store) == [(2, 2, 2, None), (1, 1, 1, None)]
    assert tickets_world.projections(result) == [("w2", 2, 2, 0), ("w1", 1, 1, 2)]
    assert result.marks["projection.skipped"] == 0


def test_the_read_model_disagrees_with_the_write_model_and_nothing_failed():
    """The write model has ticket 1 in progress at version 2; the read model has it open at
    version 1, and counts one open ticket. Both jobs SUCCEEDED at their first attempt: no
    error, no retry, no dead letter. Only INV_012 compares the two models."""
    result = scenario.run(BASELINE)

    assert result.store.tuples("SELECT id, status, version FROM tickets") == [(1, "in_progress", 2)]
    assert result.store.tuples("SELECT id, status, version FROM ticket_views") == [(1, "open", 1)]
    counts = result.store.tuples("SELECT status, tickets FROM ticket_status_counts WHERE tickets")
    assert counts == [("open", 1)]
    states = result.store.tuples("SELECT state, attempts FROM jobs ORDER BY id")
    assert states == [("SUCCEEDED", 1), ("SUCCEEDED", 1)]
    types = {e.type for e in result.events}
    assert not {"job.retry_scheduled", "job.dead", "lease.lost"} & types


def test_the_wrong_row_stays_in_the_final_database():
    """Nothing newer is on its way for ticket 1, so nothing overwrites the stale row: checked
    afresh on the final database, the row and the counts are still wrong, and the log still
    holds the read that went back. `fmlab check --db lab.db` would find all three."""
    result = scenario.run(BASELINE)

    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [WENT_BACK, ROW, COUNTS]


def test_the_lag_looks_perfect_until_the_change_is_stranded():
    """The projector's metrics see no trouble: no backlog, no error, no dead letter, and
    two lag samples of 0 ms (w2's projection covered versions 1 and 2; w1's made the row
    hold nothing new, so it adds none). What gives it away is the change the read model
    lacks with nothing on its way: within the contract (500 ms) that is ordinary lag; past
    it, the projector is `stranded`, and `/health` says degraded."""
    result = scenario.run(BASELINE)
    committed = result.events[3 - 1].at  # version 2's change, the one the row lacks

    assert lag.lag_samples_ms(result.store) == [0.0, 0.0]
    soon = lag.projection(result.store, committed + 0.4)
    assert (soon.backlog, soon.errors, soon.dead, soon.stranded) == (0, 0, 0, False)
    later = lag.projection(result.store, committed + 1.0)
    assert (later.lag_p99_ms, later.unprojected_oldest_ms) == (0.0, 1000.0)
    assert later.stranded


def test_a_rebuild_mends_the_row_but_not_what_the_reader_saw():
    """Recovery: the read model is derived, so a rebuild from the write model puts ticket
    1 back at version 2 (the rebuild takes a live row only when it is newer than the one it
    built, so the stale row does not survive). The row and the counts are right again; the
    reader's two reads stay in the log, and so does the INV_012 they prove."""
    result = scenario.run(BASELINE)
    clock = SimClock()
    clock.set(result.events[-1].at + 1.0)

    rebuilt = views.rebuild(result.store, clock)
    assert (rebuilt.tickets, rebuilt.taken_from_live) == (1, 0)
    assert result.store.tuples("SELECT id, status, version FROM ticket_views") == [
        (1, "in_progress", 2)
    ]
    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [WENT_BACK]


def test_a_check_made_after_the_other_commit_is_safe_even_here():
    """FM_017's order: w1 takes job 1 but does not check until w2 has committed version 2.
    Without any check (FM_017) that order breaks the read model; here w1's late check reads
    version 2, finds version 1 not newer, and skips. So the race needs its check before the
    other commit and its write after it: the window is the time between the two."""
    sim = Simulation(0, scenario.one_ticket(BASELINE))
    sim.act(AGENT)
    sim.act(AGENT)
    assert sim.step("w1", until="started") == "started"  # job 1 in hand, not checked yet
    sim.drain("w2")  # version 2 lands
    sim.act(READER)
    sim.drain("w1")  # w1 checks now: the row is at version 2
    sim.act(READER)
    result = sim.finish()

    assert result.violations == []
    assert checks(result.store) == [(2, 2, 2, None), (1, 1, 1, 2)]
    assert tickets_world.projections(result) == [("w2", 2, 2, 0), ("w1", 1, 1, "skipped")]
    [skipped] = [e for e in result.events if e.type == "ticket.projection_skipped"]
    assert skipped.detail == {"ticket": 1, "version": 1, "view_version": 2}
    assert [version for _, _, version in tickets_world.reads(result)] == [2, 2]


def test_the_same_seed_gives_the_same_timeline():
    first, second = scenario.run(BASELINE), scenario.run(BASELINE)
    assert first.events == second.events
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_exploration_finds_it_within_seven_seeds():
    """Two tickets, each opened and changed three times, two projectors, every fault site:
    seed 6 is the first whose projectors race this way and leave a trace."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=JOBS, workers=WORKERS)
    assert summary.failing == {"INV_012": [6]}, summary.failing


def test_explored_seed_6_loses_a_ticket_s_last_change():
    """Seed 6: both projectors read ticket 2's row at version 1; w2 commits version 3 (the
    note), then w1 commits version 2 over it on the strength of its read. The agent had
    died before closing ticket 2 (`fault.client_crash`), so version 3 is the ticket's last,
    no later projection comes to overwrite the stale row, and the read model keeps ticket
    2 without its note for good."""
    result = scenario.run(BASELINE, 6)

    [wrong] = by_inv(result, "INV_012")
    assert wrong.message.startswith(
        "ticket 2's read-model row has has_note 0 instead of 1, version 2 instead of 3"
    )
    assert wrong.evidence == Evidence(jobs=(5, 6, 7), events=(19, 63))
    assert checks(result.store, ticket=2) == [(5, 5, 1, None), (7, 7, 3, 1), (6, 6, 2, 1)]
    assert tickets_world.projections(result, ticket=2) == [
        ("w1", 5, 1, 0),
        ("w2", 7, 3, 1),
        ("w1", 6, 2, 3),
    ]
    changed = [e.detail["version"] for e in result.events if e.type == "ticket.changed"]
    assert changed == [1, 2, 3, 4, 1, 2, 3]  # ticket 1 closed at 4; ticket 2 never closed
    assert [e.type for e in result.events].count("fault.client_crash") == 1
    final = invariants.check(result.store, final=True)
    assert [v.message for v in final] == [wrong.message]


@pytest.mark.campaign  # over a second: `make gate` runs it, `make test` does not
def test_the_failure_shrinks_to_one_ticket_and_two_turns():
    """Shrunk: one ticket, two projectors, twelve steps, and no fault. The agent opens the
    ticket; w2 takes job 1 and checks (no row); the agent moves the ticket to in progress;
    w1 projects version 2 to the end; w2 commits version 1 over it. The only decisions that
    matter are two turns: w2 taking the first job, and the agent acting before w2 commits.
    No reader is needed: once the queue is quiet, the row is not its ticket's."""
    summary = explore(BUILD, range(scenario.META.found_within), jobs=JOBS, workers=WORKERS)
    case = summary.first_failure.case(jobs=JOBS, workers=WORKERS)
    shrunk = shrink(BUILD, case, "INV_012")
    assert shrunk.steps == 12, shrunk
    assert (shrunk.case.jobs, shrunk.case.workers) == (1, 2)
    result = replay(BUILD, shrunk.case, stop_on="INV_012")
    mattered = [describe(c) for c in result.decisions() if c.value]
    assert mattered == ["next: w2", "next: agent"], mattered
    assert not [e for e in result.events if e.type.startswith("fault.")]
    assert checks(result.store) == [(2, 2, 2, None), (1, 1, 1, None)]
    assert tickets_world.projections(result) == [("w1", 2, 2, 0), ("w2", 1, 1, 2)]
    assert [v.message for v in result.violations] == [ROW, COUNTS]
