"""The simulator: a seed is a timeline, a tape replays it, and the checks it runs are honest.

Three promises are tested here. Determinism: the same seed (or the same tape) gives the same
events, byte for byte. Honesty: the watching monitor, which re-checks only what changed,
finds exactly what a full batch check after every step finds. Coverage: under GUARDED,
every fault the mix names does fire somewhere in a few hundred seeds, and nothing breaks.
"""

import pytest

from failure_modes.FM_001_duplicate_retry import scenario as fm001
from runtime import invariants, states
from runtime.faults import SITES, FaultMix
from runtime.marks import MARKS
from runtime.policies import GUARDED
from runtime.sim import Simulation
from runtime.store import Store

BASELINE = GUARDED.without("commit_boundary")


def rows(result):
    return [
        (e.seq, e.at, e.type, e.job_id, e.execution_id, e.worker, e.detail) for e in result.events
    ]


@pytest.mark.parametrize("scheduler", ["random", "pct"])
def test_the_same_seed_gives_the_same_timeline_and_the_tape_replays_it(scheduler):
    world = fm001.scenario(BASELINE, jobs=4)
    for seed in range(40):
        first = Simulation(seed, world, scheduler=scheduler).run()
        again = Simulation(seed, world, scheduler=scheduler).run()
        replayed = Simulation(0, world, scheduler=scheduler, tape=first.tape).run()
        assert rows(again) == rows(first)
        assert rows(replayed) == rows(first), f"seed {seed}"
        assert replayed.tape == first.tape
        assert [str(v) for v in replayed.violations] == [str(v) for v in first.violations]


def test_a_reused_store_gives_the_same_runs_as_fresh_ones():
    world = fm001.scenario(BASELINE)
    store = Store.memory()
    for seed in range(30):
        fresh = Simulation(seed, world).run()
        fresh_rows, fresh_violations = rows(fresh), [str(v) for v in fresh.violations]
        reused = Simulation(seed, world, store=store).run()
        assert rows(reused) == fresh_rows
        assert [str(v) for v in reused.violations] == fresh_violations


@pytest.mark.parametrize("policies", [GUARDED, BASELINE], ids=["guarded", "baseline"])
def test_the_watching_monitor_finds_what_a_full_check_after_every_step_finds(policies, monkeypatch):
    """The per-step monitor reads only what changed; a batch check reads everything. After
    every step of every run, the union of what each has reported must be the same."""
    batch_found: set[str] = set()
    original = Simulation._check

    def both(self, *, final):
        original(self, final=final)
        batch_found.update(str(v) for v in invariants.check(self.store, final=final))

    monkeypatch.setattr(Simulation, "_check", both)
    world = fm001.scenario(policies, jobs=4)
    violating = 0
    for seed in range(60):
        batch_found.clear()
        result = Simulation(seed, world).run()
        assert {str(v) for v in result.violations} == batch_found, f"seed {seed}"
        violating += bool(result.violations)
    if policies is BASELINE:
        assert violating, "the baseline broke nothing: the comparison proved little"


def test_under_guarded_every_fault_fires_and_every_run_holds():
    world = fm001.scenario(GUARDED, jobs=5)
    marks: dict[str, int] = {}
    for seed in range(300):
        result = Simulation(seed, world).run()
        assert result.violations == [], f"seed {seed}: {result.violations}"
        assert {row[0] for row in result.store.all("SELECT state FROM jobs")} <= states.JOB_TERMINAL
        for name, count in result.marks.items():
            marks[name] = marks.get(name, 0) + count
    faults = {name for name in MARKS if name.startswith("fault.")}
    assert faults <= set(marks), f"faults that never fired: {faults - set(marks)}"
    for guard in ("fence.refused", "effect.absorbed", "submit.absorbed", "reaper.rescued"):
        assert marks.get(guard), guard


def test_two_level_activation_gives_each_seed_its_own_mix():
    world = fm001.scenario(GUARDED)
    mixes = {Simulation(seed, world).active_sites for seed in range(40)}
    assert len(mixes) > 20
    assert all(site in SITES for mix in mixes for site in mix)


def test_a_transient_database_error_loses_nothing():
    """db_error only: the failed transaction writes nothing, the worker lets go, and the
    lease runs out into the reaper's hands."""
    mix = FaultMix(sites=("db_error",), activation=1.0, firing=0.5)
    world = fm001.scenario(GUARDED, jobs=3, mix=mix)
    failed = 0
    for seed in range(30):
        result = Simulation(seed, world).run()
        assert result.violations == [], f"seed {seed}: {result.violations}"
        # An armed error waits for the worker's next transaction, which may never come.
        assert result.marks["store.unavailable"] <= result.marks["fault.db_error"]
        failed += result.marks["store.unavailable"]
    assert failed > 10  # and every one of those runs still ended with every job done


def test_a_stored_run_is_a_plain_lab_database(tmp_path):
    result = Simulation(3, fm001.scenario(BASELINE)).run()
    result.save(tmp_path / "run.db")
    saved = Store.open(tmp_path / "run.db", read_only=True)
    names = [r[0] for r in saved.all("SELECT name FROM sqlite_master")]
    assert not [n for n in names if n.startswith("fmlab_")], names
    assert [str(v) for v in invariants.check(saved, final=True)] == [
        str(v) for v in result.violations
    ]
    saved.close()


def test_an_unknown_scheduler_is_refused():
    with pytest.raises(ValueError, match="unknown scheduler"):
        Simulation(0, fm001.scenario(), scheduler="fifo")
