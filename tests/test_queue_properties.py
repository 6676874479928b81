"""The queue under random programs: Hypothesis drives every verb in any order, with time
jumping past leases, and after every step the invariants must hold.

Prior art: Hypothesis's rule-based state machines. The machine keeps a small model of what
the queue should do (job states, attempts, tokens, which leases are still open and until
when) next to a real Queue over an in-memory Store, and predicts each verb's outcome before
calling it: success, LeaseLost (a lease that expired or was rescued) or IllegalTransition
(a step out of order). A failure shrinks to the shortest program that breaks a rule and
prints it as Python calls on the machine, which paste straight into a scripted test like
the one at the bottom of this file.

Profiles (tests/conftest.py): `ci` is derandomized, `dev` searches afresh each run.
"""

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime import invariants
from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import IllegalTransition, LeaseLost, UsageError
from runtime.queue import Lease, Queue
from runtime.states import COMMITTED, DEAD, IN_PROGRESS, LEASED, PENDING, RUNNING, SUCCEEDED
from runtime.store import Store
from tests.support import POLICIES, new_store

KEYS = ("order-1", "order-2", "order-3")
CLOCK_STEPS_S = (0.0, 0.5, 1.0, 2.0, 5.0, 29.5, 30.0, 31.0, 61.0)
"""Small steps for interleavings; and to just before, exactly onto and past the end of a
fresh lease (lease_s=30)."""
ACTIONS = (
    "next step",
    "next step",
    "next step",
    "lease",
    "heartbeat",
    "start",
    "commit",
    "ack",
    "fail",
    "crash",
)
"""What a worker may do; "next step" (what a well-behaved worker does next) is listed three
times so that in-order progress is common and jobs get all the way through."""
NEXT = {LEASED: "start", IN_PROGRESS: "commit", COMMITTED: "ack"}
ROUNDING_S = 0.0005
"""next_retry_at rounds to the millisecond, so a retry may land up to half a ms off."""
PICK = st.integers(min_value=0, max_value=3)
"""Which of several leases (or jobs) a rule acts on, modulo how many there are."""


@dataclass
class JobModel:
    state: str
    attempts: int
    max_attempts: int
    run_at: float
    token: int = 0
    has_effect: bool = False


@dataclass
class OpenExecution:
    """An execution the queue still counts as running: held by a worker, or abandoned."""

    job_id: int
    status: str
    expires_at: float


def everything(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table: "this wrote nothing" made checkable."""
    return {
        table: [tuple(row) for row in store.all(f"SELECT * FROM {table} ORDER BY 1")]
        for table in ("jobs", "executions", "effects", "events")
    }


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = SimClock(start=0.0)
        self.store = new_store()
        self.queue = Queue(self.store, self.clock, random.Random(0), POLICIES)
        self.jobs: dict[int, JobModel] = {}
        self.keys: dict[str, int] = {}
        self.open: dict[int, OpenExecution] = {}  # by execution id
        self.held: dict[int, Lease] = {}  # by execution id: the leases workers still hold

    def teardown(self) -> None:
        self.store.close()

    # --- client and operator ----------------------------------------------------------

    @initialize(budgets=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=3))
    def some_work(self, budgets: list[int]) -> None:
        """Start with a job or three ready, so workers have something to do from step one."""
        for attempts_max in budgets:
            self.submit(key=None, max_attempts=attempts_max, delay_s=0.0)

    @rule(
        key=st.none() | st.sampled_from(KEYS),
        max_attempts=st.none() | st.integers(min_value=1, max_value=3),
        delay_s=st.sampled_from((0.0, 2.0)),
    )
    def submit(self, key: str | None, max_attempts: int | None, delay_s: float) -> None:
        now = self.clock.now()
        job_id = self.queue.submit(
            "award_points",
            {"n": len(self.jobs)},
            idempotency_key=key,
            max_attempts=max_attempts,
            delay_s=delay_s,
        )
        if key in self.keys:
            assert job_id == self.keys[key]
            assert self.store.events()[-1].type == "job.submit_absorbed"
            return
        assert job_id not in self.jobs
        attempts_max = POLICIES.attempts_max if max_attempts is None else max_attempts
        self.jobs[job_id] = JobModel(PENDING, 0, attempts_max, now + delay_s)
        if key is not None:
            self.keys[key] = job_id

    @precondition(lambda self: self.open)
    @rule()
    def reap(self) -> None:
        now = self.clock.now()
        expired = sorted(e for e, x in self.open.items() if x.expires_at <= now)

        rescued = self.queue.reap()

        assert rescued == [self.open[e].job_id for e in expired]
        for execution_id in expired:
            job = self.jobs[self.open.pop(execution_id).job_id]
            if job.attempts >= job.max_attempts:
                job.state = DEAD
            else:
                job.state, job.run_at = PENDING, now
            # A worker may still hold the lease: its next write must be refused.

    @precondition(lambda self: self.jobs)
    @rule(pick=PICK, reason=st.sampled_from(("", "the ledger is back")))
    def redrive(self, pick: int, reason: str) -> None:
        """An operator redrives a job: dead ones first, when there are any."""
        dead = sorted(i for i, j in self.jobs.items() if j.state == DEAD)
        candidates = dead if dead and pick % 2 == 0 else sorted(self.jobs)
        job_id = candidates[pick % len(candidates)]
        job = self.jobs[job_id]
        if job.state != DEAD or not reason:
            before = everything(self.store)
            with pytest.raises(UsageError):
                self.queue.redrive(job_id, reason=reason, by="operator")
            assert everything(self.store) == before
            return
        self.queue.redrive(job_id, reason=reason, by="operator")
        job.state, job.attempts, job.run_at = PENDING, 0, self.clock.now()

    @rule(seconds=st.sampled_from(CLOCK_STEPS_S))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # --- workers ----------------------------------------------------------------------

    @rule(action=st.sampled_from(ACTIONS), pick=PICK)
    def w1_acts(self, action: str, pick: int) -> None:
        self.worker_acts("w1", action, pick)

    @rule(action=st.sampled_from(ACTIONS), pick=PICK)
    def w2_acts(self, action: str, pick: int) -> None:
        self.worker_acts("w2", action, pick)

    def worker_acts(self, worker: str, action: str, pick: int) -> None:
        """A worker leases a job, or does something with a lease it holds: usually the step
        that comes next, sometimes any verb at all (out of order, too late, after a crash)."""
        mine = sorted(e for e, lease in self.held.items() if lease.worker == worker)
        if action == "lease" or not mine:
            self.lease(worker)
            return
        lease = self.held[mine[pick % len(mine)]]
        if action == "next step":
            execution = self.open.get(lease.execution_id)
            action = NEXT[LEASED if execution is None else execution.status]
        getattr(self, action)(lease)

    def lease(self, worker: str) -> None:
        now = self.clock.now()
        ready = sorted((j.run_at, i) for i, j in self.jobs.items() if j.state == PENDING)
        ready = [(run_at, i) for run_at, i in ready if run_at <= now]

        lease = self.queue.lease(worker)

        if not ready:
            assert lease is None
            return
        job_id = ready[0][1]  # the oldest ready job: by run_at, then id
        job = self.jobs[job_id]
        job.state, job.attempts, job.token = RUNNING, job.attempts + 1, job.token + 1
        assert lease is not None
        assert (lease.job_id, lease.worker, lease.attempt, lease.fencing_token) == (
            job_id,
            worker,
            job.attempts,
            job.token,
        )
        assert lease.expires_at == now + POLICIES.lease_s
        assert lease.execution_id not in self.open
        self.open[lease.execution_id] = OpenExecution(job_id, LEASED, lease.expires_at)
        self.held[lease.execution_id] = lease

    def heartbeat(self, lease: Lease) -> None:
        done, extended = self.fenced(
            lease, (LEASED, IN_PROGRESS, COMMITTED), lambda: self.queue.heartbeat(lease)
        )
        if done:
            assert extended.expires_at == self.clock.now() + POLICIES.lease_s
            self.open[lease.execution_id].expires_at = extended.expires_at
            self.held[lease.execution_id] = extended

    def start(self, lease: Lease) -> None:
        done, _ = self.fenced(lease, (LEASED,), lambda: self.queue.start(lease))
        if done:
            self.open[lease.execution_id].status = IN_PROGRESS

    def commit(self, lease: Lease) -> None:
        effect = Effect("ledger", f"job-{lease.job_id}", {"by": lease.worker})
        done, _ = self.fenced(lease, (IN_PROGRESS,), lambda: self.queue.commit(lease, effect))
        if not done:
            return
        job = self.jobs[lease.job_id]
        first_time = "effect.absorbed" if job.has_effect else "effect.applied"
        assert [e.type for e in self.store.events()[-2:]] == [first_time, "execution.committed"]
        job.has_effect = True
        self.open[lease.execution_id].status = COMMITTED

    def ack(self, lease: Lease) -> None:
        done, _ = self.fenced(lease, (COMMITTED,), lambda: self.queue.ack(lease))
        if done:
            self.jobs[lease.job_id].state = SUCCEEDED
            self.close(lease.execution_id)

    def fail(self, lease: Lease) -> None:
        error = f"TimeoutError: attempt {lease.attempt} of job {lease.job_id}"
        done, state = self.fenced(
            lease, (LEASED, IN_PROGRESS), lambda: self.queue.fail(lease, error)
        )
        if not done:
            return
        now, job = self.clock.now(), self.jobs[lease.job_id]
        if job.attempts >= job.max_attempts:
            assert state == DEAD
            job.state = DEAD
        else:
            assert state == PENDING
            job.state = PENDING
            job.run_at = self.queue.get(lease.job_id).run_at
            ceiling = min(
                POLICIES.retry_delay_s_max, POLICIES.retry_delay_s_base * 2 ** (job.attempts - 1)
            )
            assert now - ROUNDING_S <= job.run_at <= now + ceiling + ROUNDING_S
        self.close(lease.execution_id)

    def crash(self, lease: Lease) -> None:
        """The worker dies holding the lease. The queue learns of it only when the lease
        runs out and the reaper sweeps."""
        del self.held[lease.execution_id]

    def close(self, execution_id: int) -> None:
        del self.open[execution_id]
        self.held.pop(execution_id, None)

    def fenced(
        self, lease: Lease, legal_from: Collection[str], write: Callable[[], Any]
    ) -> tuple[bool, Any]:
        """Call one fenced verb, expecting what the model predicts; (went through, result).

        A lost lease must raise LeaseLost and leave only a `lease.lost` event behind; the
        worker then lets go of it. A step out of order must raise IllegalTransition and
        write nothing at all.
        """
        execution_id = lease.execution_id
        before = everything(self.store)
        execution = self.open.get(execution_id)
        if execution is None or self.clock.now() >= execution.expires_at:
            with pytest.raises(LeaseLost):
                write()
            after = everything(self.store)
            assert after["events"][:-1] == before["events"]
            assert self.store.events()[-1].type == "lease.lost"
            assert {t: r for t, r in after.items() if t != "events"} == {
                t: r for t, r in before.items() if t != "events"
            }
            del self.held[execution_id]
            return False, None
        if execution.status not in legal_from:
            with pytest.raises(IllegalTransition):
                write()
            assert everything(self.store) == before
            return False, None
        return True, write()

    # --- after every step -------------------------------------------------------------

    @invariant()
    def every_invariant_holds(self) -> None:
        violations = invariants.check(self.store, final=False)
        assert violations == [], [str(v) for v in violations]

    @invariant()
    def the_database_agrees_with_the_model(self) -> None:
        stored = {
            job.id: (job.state, job.attempts, job.max_attempts, job.run_at, job.fencing_token)
            for job in self.queue.jobs()
        }
        assert stored == {
            i: (j.state, j.attempts, j.max_attempts, j.run_at, j.token)
            for i, j in self.jobs.items()
        }
        rows = self.store.all(
            "SELECT id, status, lease_expires_at FROM executions"
            " WHERE status IN ('LEASED', 'IN_PROGRESS', 'COMMITTED')"
        )
        assert {r[0]: (r[1], r[2]) for r in rows} == {
            e: (x.status, x.expires_at) for e, x in self.open.items()
        }


def test_random_programs_agree_with_the_model(backend):
    """Random programs, each a fresh database: 100 on SQLite, and the first 10 of the same
    derandomized search on PostgreSQL, where each step's round trips cost ten times more."""
    examples = 10 if backend == "postgresql" else settings().max_examples
    run_state_machine_as_test(
        QueueMachine, settings=settings(stateful_step_count=30, max_examples=examples)
    )


def test_a_scripted_program_through_the_rarest_paths(backend):
    """The paths random programs reach least often, spelled out in the machine's own
    calls: a worker dies after committing, the reaper rescues the job, the retry's commit is
    absorbed; a job dies, is redriven, and lives. The model's predictions are checked at
    every call, and the invariants after each one, as Hypothesis would."""
    state = QueueMachine()
    steps: list[Callable[[], None]] = [
        lambda: state.some_work(budgets=[3, 1]),
        lambda: state.w1_acts(action="lease", pick=0),  # job 1
        lambda: state.w1_acts(action="next step", pick=0),  # start
        lambda: state.w1_acts(action="next step", pick=0),  # commit: the effect is applied
        lambda: state.w1_acts(action="crash", pick=0),  # dies before the ack
        lambda: state.w2_acts(action="lease", pick=0),  # job 2, its only attempt
        lambda: state.w2_acts(action="fail", pick=0),  # DEAD
        lambda: state.advance(seconds=30.0),
        lambda: state.reap(),  # job 1 rescued
        lambda: state.w2_acts(action="lease", pick=0),  # job 1 again, token 2
        lambda: state.w2_acts(action="next step", pick=0),  # start
        lambda: state.w2_acts(action="next step", pick=0),  # commit: absorbed
        lambda: state.w2_acts(action="next step", pick=0),  # ack
        lambda: state.redrive(pick=0, reason="the ledger is back"),  # job 2
        lambda: state.w1_acts(action="lease", pick=0),
        lambda: state.w1_acts(action="next step", pick=0),
        lambda: state.w1_acts(action="next step", pick=0),
        lambda: state.w1_acts(action="next step", pick=0),
    ]
    try:
        for step in steps:
            step()
            state.every_invariant_holds()
            state.the_database_agrees_with_the_model()
        types = [e.type for e in state.store.events()]
        assert "effect.absorbed" in types and "job.redriven" in types
        assert [job.state for job in state.queue.jobs()] == [SUCCEEDED, SUCCEEDED]
        assert invariants.check(state.store, final=True) == []
    finally:
        state.teardown()
