"""A deterministic simulator: real runtime, real SQLite, simulated time, scheduling and faults.

Prior art: FoundationDB's simulator and TigerBeetle's VOPR. One `Choices` tape owns every
decision (which actor steps next, which fault site is on, which fault fires, how long a
step takes, the backoff jitter), so a seed *is* a timeline, the same seed prints the same
bytes, and the tape replays it anywhere. Nothing is mocked: workers are the runtime's step
generators over an in-memory SQLite store, and every invariant is checked after every
step.

Two ways to drive it:
- scripted: `sim.step("w1", until="effect_applied")`, `sim.crash("w1")`, `sim.advance(31)`,
  `sim.reap()`, `sim.drain()`, `sim.finish()`: one exact schedule a reader can follow;
- explored: `sim.run()`: a seeded interleaving of the workers and the reaper, with the
  fault mix firing as workers reach their steps (the safety phase); then the faults heal
  and the run goes on until quiet, and the end-of-run checks require every job to have
  finished (the liveness phase).
"""

import functools
import hashlib
import math
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runtime import accounts, dependency
from runtime.choices import Choice, Choices, decisions
from runtime.clock import SimClock, WallClock
from runtime.dependency import Dependency, Remote
from runtime.errors import StepBudgetExceeded
from runtime.faults import (
    CRASH_STEPS,
    NO_FAULTS,
    NO_MIX,
    AdvanceClock,
    CrashAfter,
    FaultInjector,
    FaultMix,
    FaultPlan,
    PauseAfter,
)
from runtime.intents.log import record, recording
from runtime.invariants import INVARIANTS, Violation
from runtime.marks import Marks
from runtime.monitor import Monitor
from runtime.observe import clusters, severity
from runtime.policies import GUARDED, Policies
from runtime.queue import REAPER, Queue
from runtime.store import Event, Store, Tx
from runtime.watch import install_watch, unwatch
from runtime.worker import ENDINGS, Handler, Worker

CLIENT = "client"
"""The actor that records intents during the run (Scenario.clients_record)."""
OPERATOR = "operator"
"""The actor that rebuilds the derived failure views (Scenario.rebuild_views)."""
FAILURE_EVENTS = frozenset({"job.retry_scheduled", "job.dead"})
STEP_MS_MAX = 1000
"""A step takes a whole number of milliseconds in [0, STEP_MS_MAX] of simulated time."""
SCHEDULERS = ("random", "pct")
PCT_DEPTH = 3
"""PCT finds any bug of depth d (d ordering constraints) with probability at least
1/(n * k^(d-1)) per run; d = 3 covers "A before B before C" (Burckhardt et al., 2010)."""
PCT_HORIZON = 64
"""Priority change points are drawn among the first PCT_HORIZON steps."""
CLOCK_JUMPS = (1.0, 2.0, -0.5, -1.0)
"""A clock jump moves time by one of these multiples of the lease: forward, or back."""
_SITES_AFTER = {
    step: (f"crash@{step}", f"pause@{step}", *(("lost_ack",) if step == "committed" else ()))
    for step in CRASH_STEPS
}
"""The fault sites a worker arrives at after each step (besides those of every step)."""
_SITES_ANY = ("clock_jump", "db_error", "wall_clock_step", "lock_contention")


@functools.cache
def _sites_reached(active: frozenset[str]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Of the `active` sites, those reached after each worker step, and after any step."""
    after = {
        step: tuple(site for site in (*sites, *_SITES_ANY) if site in active)
        for step, sites in _SITES_AFTER.items()
    }
    return after, tuple(site for site in _SITES_ANY if site in active)


# The questions a run asks over and over, worded once per process (the tape keeps them).
@functools.cache
def _switch_on(site: str) -> str:
    return f"switch on {site}"


@functools.cache
def _next_of(actors: tuple[str, ...]) -> str:
    return "next: " + " | ".join(actors)


@functools.cache
def _fault_after(worker: str, step: str) -> str:
    return f"fault after {worker} {step}"


STEPS_PER_JOB = 100
"""A run may take this many steps per job: the first half with faults firing (the safety
phase), the rest to go quiet once they heal. The lab's worlds take under 15 a job; a run
still busy at the end never goes quiet (a job retried forever), and it ends there: the
final check reports every job it left unfinished."""


def worker_names(count: int) -> tuple[str, ...]:
    """w1, w2, ...: the workers of an explored scenario."""
    if count < 1:
        raise ValueError(f"a scenario needs at least one worker, got {count}")
    return tuple(f"w{n}" for n in range(1, count + 1))


@dataclass(frozen=True)
class JobSpec:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    """The idempotency key the client submits with (and repeats, if its submit is retried)."""


class Actors(Protocol):
    """A system built on the runtime brings actors of its own into a run (the tickets
    service: a client sending commands, a reader, an operator who rebuilds): the scheduler
    interleaves them with the workers and the reaper, and checks every invariant after
    each of their steps as after a worker's. One Actors lives for one run."""

    names: tuple[str, ...]
    """Every actor it may offer (PCT draws their priorities up front)."""
    jobs: int
    """How many jobs its actors will create: the run's step budget grows with them."""

    def ready(self) -> list[str]:
        """The actors that can take a step now."""

    def act(self, actor: str) -> str:
        """Take one step of `actor` (faults included, drawn from the run's tape); returns
        the step's name."""

    def heal(self) -> None:
        """The liveness phase begins: no more faults."""


class World(Protocol):
    """What a scenario names to bring a system's actors into its runs."""

    def begin(self, sim: "Simulation") -> Actors: ...


@dataclass(frozen=True)
class Scenario:
    jobs: tuple[JobSpec, ...]
    handlers: Mapping[str, Handler]
    workers: tuple[str, ...] = ("w1", "w2")
    policies: Policies = GUARDED
    faults: FaultPlan = NO_FAULTS
    """Scripted faults: exactly these, where they say."""
    mix: FaultMix = NO_MIX
    """Explored faults: sites switched on and fired by the tape."""
    accounts: tuple[tuple[str, int], ...] = ()
    """Accounts (runtime.accounts) opened with these balances before any job is submitted."""
    dependencies: tuple[Dependency, ...] = ()
    """Systems the jobs' external effects land in, which can be down or overloaded
    (runtime.dependency); declared before any job is submitted."""
    step_ms_max: int = STEP_MS_MAX
    """How long an explored step may take: a world of many fast workers takes less."""
    intents: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Intents (type, payload) recorded in the intent log before the run (runtime.intents);
    their projection and sync jobs are the run's work, with runtime.intents.log.HANDLERS."""
    clients_record: bool = False
    """The intents are recorded during the run, one transaction a step, by a client the
    scheduler interleaves with the workers (and fault site `client_crash` can kill),
    instead of before it."""
    rebuild_views: bool = False
    """An operator rebuilds the derived failure views (clusters, severities) whenever
    failures were logged since its last rebuild: one more actor the scheduler picks."""
    world: World | None = None
    """A system built on the runtime, whose actors join the run (runtime.tickets.world)."""


@dataclass
class RunResult:
    seed: int
    policies: Policies
    store: Store
    steps: int
    violations: list[Violation]
    tape: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    marks: Marks = field(default_factory=Marks)
    step_hashes: list[str] = field(default_factory=list)
    """With `trace=True`: a hash of the state after each step, for determinism checks."""

    @property
    def events(self) -> list[Event]:
        return self.store.events()

    def violated(self) -> list[str]:
        """The ids of the invariants violated, each once, in order."""
        return sorted({v.inv for v in self.violations})

    def save(self, path: str | Path) -> None:
        """Write the run's database to a new file, as a plain lab database."""
        self.store.backup_to(path)
        saved = Store.open(path)
        try:
            unwatch(saved)
        finally:
            saved.close()

    def decisions(self) -> list[Choice]:
        return decisions(self.labels, self.tape)


class Simulation:
    def __init__(
        self,
        seed: int,
        scenario: Scenario,
        *,
        tape: Sequence[int] | None = None,
        labels: Sequence[str] | None = None,
        scheduler: str = "random",
        stop_on: str | Collection[str] | None = None,
        trace: bool = False,
        store: Store | None = None,
    ) -> None:
        """`tape` replays recorded decisions instead of drawing them from `seed`;
        `stop_on` ends the run at the first violation of that INV (or of any of those;
        "any": of any INV);
        `trace` keeps a hash of the state after every step; `store`, an in-memory store
        to wipe and reuse (an explorer's, which keeps no run's store past its summary)."""
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; schedulers are {SCHEDULERS}")
        self.seed = seed
        self.scenario = scenario
        self.scheduler = scheduler
        self.stop_on = stop_on
        self._stop_at: frozenset[str] | None = (
            None
            if stop_on is None or stop_on == "any"
            else frozenset((stop_on,) if isinstance(stop_on, str) else stop_on)
        )
        self.trace = trace
        self.choices = Choices(seed, tape, labels)
        self.clock = SimClock()
        if store is None:
            make = _RUN_STORES.get()
            store = Store.memory(_watched_image()) if make is None else make()
        watched = isinstance(store, Store)
        """An in-memory SQLite store carries the monitor's change capture (runtime.watch);
        another backend's is read whole at each check."""
        store.wipe(_watched_image()) if watched else store.wipe()
        self.store = store
        self.store.before_transaction = self._before_transaction
        remotes = {
            d.sink: Remote(d, self.choices if d.fail_rate else None) for d in scenario.dependencies
        }
        self.walls = {name: WallClock(self.clock) for name in scenario.workers}
        """Each worker's own wall clock: the store's clock until a step moves it."""
        self.queue = Queue(
            self.store, self.clock, self.choices, scenario.policies, remotes, self.walls
        )
        self.marks = self.queue.marks
        self.workers = {
            name: Worker(name, self.queue, scenario.handlers) for name in scenario.workers
        }
        self.injector = FaultInjector(scenario.faults)
        self.monitor = Monitor(self.store, INVARIANTS, watch=watched, from_empty=watched)
        self.steps = 0
        self.step_hashes: list[str] = []
        self._running: dict[str, Iterator[str]] = {}
        self._paused_until: dict[str, float] = {}
        self._last_step: dict[str, str] = {}
        self._violations: dict[str, Violation] = {}
        self._acting: str | None = None
        self._db_error_armed: set[str] = set()
        self._contended: set[str] = set()
        """Workers whose next transaction will find another process holding the lock."""
        self._healed = False
        mix = scenario.mix
        self.active_sites = frozenset(
            site for site in mix.sites if self.choices.chance(mix.activation, _switch_on(site))
        )
        self._sites_after, self._sites_any = _sites_reached(self.active_sites)
        """Per worker step, the active sites a worker arrives at after it; and those it
        arrives at after any step."""
        self._priorities: dict[str, int] = {}
        self._change_points: list[int] = []
        self.actors = None if scenario.world is None else scenario.world.begin(self)
        """The actors of the scenario's world, if it has one; they may not write yet."""
        if scheduler == "pct":
            self._draw_priorities()
        for declared in scenario.dependencies:
            dependency.declare(self.store, self.clock.now(), declared)
        for name, balance in scenario.accounts:
            accounts.open_account(self.store, self.clock.now(), name, balance)
        if scenario.jobs:
            with self.store.transaction() as tx:  # the client's submits, in one batch
                for job in scenario.jobs:
                    self._submit(tx, job)
        self._unrecorded = list(scenario.intents) if scenario.clients_record else []
        """Intents the client has yet to record."""
        self._client: Iterator[tuple[str, int]] | None = None
        """The recording the client is in the middle of."""
        if not scenario.clients_record:
            for type_, payload in scenario.intents:
                record(self.queue, type_, dict(payload))
        self._unviewed_failures = False
        """Failures were logged since the operator last rebuilt the derived views."""
        self._check(final=False)

    # --- scripted driving --------------------------------------------------------------

    def step(self, worker: str, *, until: str | None = None) -> str | None:
        """Run `worker` one step (or up to and including step `until`); returns the last step.

        Returns None when the worker had nothing to do or its attempt is over.
        """
        while True:
            name = self._step(worker)
            if until is None or name is None or name == until:
                return name

    def crash(self, worker: str) -> None:
        """Kill `worker`: whatever it held in memory is gone; the store keeps what it wrote.

        The worker comes straight back as a fresh process with nothing in hand.
        """
        self._drop_attempt(worker)
        self.marks.hit("fault.crash")
        self.queue.note("fault.crash", worker=worker, after=self._last_step.get(worker))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def client_step(self) -> str | None:
        """The client takes one step of its recording (runtime.intents.log.recording): the
        next transaction of the intent it is recording, or the first of the next one.
        Returns the step's name, None when nothing is left to record."""
        if self._client is None:
            if not self._unrecorded:
                return None
            type_, payload = self._unrecorded.pop(0)
            self._client = recording(self.queue, type_, dict(payload))
        step = next(self._client, None)
        name = None if step is None else step[0]
        if name in (None, "recorded"):
            self._client = None
        self._after_step(CLIENT, name)
        return name

    def crash_client(self) -> None:
        """Kill the client: the intent it was recording, if any, is never finished, and
        nobody retries it. The next client starts with the next intent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.marks.hit("fault.client_crash")
        self.queue.note("fault.client_crash", worker=CLIENT)

    def _client_turn(self) -> None:
        """Explored: before each client step, fault site `client_crash` may kill it."""
        if self._client is None and self._unrecorded:
            type_, payload = self._unrecorded.pop(0)
            self._client = recording(self.queue, type_, dict(payload))
        if (
            not self._healed
            and "client_crash" in self.active_sites
            and self.choices.maybe(("client_crash",), self.scenario.mix.firing, "client crash")
        ):
            self.crash_client()
            self._after_step(CLIENT, "crashed")
            return
        self.client_step()

    def act(self, actor: str) -> str:
        """Scripted: one step of an actor of the scenario's world (`Scenario.world`), then
        the checks, as after any step; returns the step's name."""
        if self.actors is None or actor not in self.actors.names:
            raise ValueError(f"no actor {actor!r} in this scenario's world")
        step = self.actors.act(actor)
        self._after_step(actor, step)
        return step

    def rebuild(self) -> None:
        """The operator rebuilds the derived failure views (runtime.observe)."""
        now, policies = self.clock.now(), self.scenario.policies
        if policies.replace_derived and clusters.stored(self.store):
            self.marks.hit("derived.replaced")
        clusters.rebuild(self.store, now, policies)
        severity.rebuild(self.store, now, policies)
        self._unviewed_failures = False
        self._after_step(OPERATOR, "rebuilt")

    def step_wall_clock(self, worker: str, seconds: float) -> None:
        """Step `worker`'s own wall clock by `seconds` (back, when negative); the store's
        clock, which stamps the log, goes on as it was."""
        self.walls[worker].step(seconds)
        self.marks.hit("fault.wall_clock_step")
        self.queue.note("fault.wall_clock_step", worker=worker, seconds=seconds)

    @property
    def violations(self) -> list[Violation]:
        """What the checks after every step have found so far, in invariant order."""
        return sorted(self._violations.values(), key=lambda v: v.inv)

    def reap(self) -> list[int]:
        return self.queue.reap()

    def drain(self, worker: str, *, steps_max: int = 1000) -> None:
        """Let `worker` alone run attempts until nothing is ready for it."""
        for _ in range(steps_max):
            if worker not in self._running and not self.queue.has_ready():
                return
            self._step(worker)
        raise StepBudgetExceeded(f"{worker} still busy after {steps_max} steps")

    # --- explored driving --------------------------------------------------------------

    def run(self) -> RunResult:
        """Explore: faults fire while the actors interleave (safety), then the faults heal
        and the run goes on until nothing is left to do, or its steps run out (liveness)."""
        jobs = len(self.scenario.jobs) + 2 * len(self.scenario.intents)  # a projection, a sync
        jobs += 0 if self.actors is None else self.actors.jobs
        steps_max = STEPS_PER_JOB * max(1, jobs)
        self._interleave(steps_max // 2)
        if not self._stopped():
            self._heal()
            self._interleave(steps_max)
        return self.finish()

    def finish(self) -> RunResult:
        """End the run: the final (liveness) check joins what every step found."""
        if not self._stopped():
            self._check(final=True)
        return RunResult(
            seed=self.seed,
            policies=self.scenario.policies,
            store=self.store,
            steps=self.steps,
            violations=self.violations,
            tape=self.choices.tape,
            labels=self.choices.labels,
            marks=self.marks,
            step_hashes=self.step_hashes,
        )

    # --- internals: the explored loop ----------------------------------------------------

    def _interleave(self, steps_max: int) -> None:
        while not self._stopped():
            actors = self._actors()
            if not actors:
                if not self._jump_to_next_deadline():
                    return
                continue
            if self.steps >= steps_max:
                return
            actor = self._next_actor(actors)
            if actor == REAPER:
                self.queue.reap()
                self._after_step(REAPER, "swept")
            elif actor == OPERATOR:
                self.rebuild()
            elif actor == CLIENT:
                self._client_turn()
            elif self.actors is not None and actor in self.actors.names:
                self._after_step(actor, self.actors.act(actor))
            else:
                self._step(actor)
            self.clock.advance(self.choices.below(self.scenario.step_ms_max + 1, "step ms") / 1000)

    def _actors(self) -> list[str]:
        now = self.clock.now()
        ready, expired = self.monitor.mirror.due(now)
        actors = [
            name
            for name in self.workers
            if self._paused_until.get(name, -math.inf) <= now and (name in self._running or ready)
        ]
        if expired and self.scenario.policies.reaper:  # without the lever, no reaper runs
            actors.append(REAPER)
        if self._unviewed_failures and self.scenario.rebuild_views:
            actors.append(OPERATOR)
        if self._client is not None or self._unrecorded:
            actors.append(CLIENT)
        if self.actors is not None:
            actors += self.actors.ready()
        return actors

    def _next_actor(self, actors: list[str]) -> str:
        if self.scheduler == "random":
            return actors[self.choices.below(len(actors), _next_of(tuple(actors)))]
        # PCT: the highest-priority actor runs; at a change point it drops to the bottom.
        actor = max(actors, key=self._priorities.__getitem__)
        if self.steps in self._change_points:
            self._priorities[actor] = -1 - self.steps
        return actor

    def _draw_priorities(self) -> None:
        remaining = [
            *self.workers,
            REAPER,
            *([OPERATOR] if self.scenario.rebuild_views else []),
            *([CLIENT] if self.scenario.clients_record else []),
            *(() if self.actors is None else self.actors.names),
        ]
        rank = len(remaining)
        while remaining:
            chosen = remaining.pop(self.choices.below(len(remaining), "priority"))
            self._priorities[chosen] = rank
            rank -= 1
        self._change_points = [
            self.choices.below(PCT_HORIZON, "priority change point") for _ in range(PCT_DEPTH - 1)
        ]

    def _jump_to_next_deadline(self) -> bool:
        """When nobody can act, jump the clock to the next moment somebody can."""
        now = self.clock.now()
        candidates = [t for t in self._paused_until.values() if t > now]
        deadline = self.monitor.mirror.next_deadline(now)
        if deadline is not None:
            candidates.append(deadline)
        if not candidates:
            return False
        self.clock.set(min(candidates))
        return True

    def _heal(self) -> None:
        """The liveness phase: no more faults, every paused worker wakes up now, and every
        wall clock is right again."""
        self._healed = True
        self._paused_until.clear()
        self._db_error_armed.clear()
        self._contended.clear()
        for wall in self.walls.values():  # NTP has caught up: every wall reads the store's time
            wall.offset = 0.0
        if self.actors is not None:
            self.actors.heal()

    # --- internals: one step ---------------------------------------------------------

    def _step(self, worker: str) -> str | None:
        attempt = self._running.get(worker)
        if attempt is None:
            attempt = self._running[worker] = self.workers[worker].attempt()
        self._acting = worker
        try:
            step = next(attempt, None)
        finally:
            self._acting = None
        if step is None or step in ENDINGS or step == "acked":
            self._running.pop(worker, None)
        if step is not None:
            self._last_step[worker] = step
            self._inject(worker, step)
        self._after_step(worker, step)
        return step

    def _after_step(self, actor: str, step: str | None) -> None:
        self.steps += 1
        self._check(final=False)
        if self.trace:
            self.step_hashes.append(self._state_hash(actor, step))

    def _drop_attempt(self, worker: str) -> None:
        attempt = self._running.pop(worker, None)
        if attempt is not None:
            attempt.close()

    def _inject(self, worker: str, step: str) -> None:
        for fault in self.injector.after(worker, step):
            match fault:
                case CrashAfter():
                    self.crash(worker)
                case PauseAfter(seconds=seconds):
                    self._pause(worker, seconds)
                case AdvanceClock(seconds=seconds):
                    self.clock.advance(seconds)
                    self.marks.hit("fault.clock_jump")
                    self.queue.note("fault.clock_advanced", worker=worker, seconds=seconds)
        if self._healed or not self.active_sites:
            return
        sites = self._sites_after.get(step, self._sites_any)
        if self.workers[worker].in_external_call and "external_timeout" in self.active_sites:
            sites = (*sites, "external_timeout")
        if not sites:
            return
        fault = self.choices.maybe(sites, self.scenario.mix.firing, _fault_after(worker, step))
        if fault is None:
            return
        if fault.startswith("crash@"):
            self.crash(worker)
        elif fault.startswith("pause@"):
            lease_s = self.scenario.policies.lease_s
            self._pause(worker, lease_s * (1 + self.choices.below(11, "pause length") / 10))
        elif fault == "lost_ack":
            self._drop_attempt(worker)
            self.marks.hit("fault.lost_ack")
            self.queue.note("fault.lost_ack", worker=worker)
        elif fault == "clock_jump":
            jump = CLOCK_JUMPS[self.choices.below(len(CLOCK_JUMPS), "clock jump")]
            seconds = jump * self.scenario.policies.lease_s
            self.clock.set(self.clock.now() + seconds)
            self.marks.hit("fault.clock_jump")
            self.queue.note("fault.clock_jump", worker=worker, seconds=seconds)
        elif fault == "wall_clock_step":
            jump = CLOCK_JUMPS[self.choices.below(len(CLOCK_JUMPS), "wall clock step")]
            self.step_wall_clock(worker, jump * self.scenario.policies.lease_s)
        elif fault == "db_error":
            self._db_error_armed.add(worker)
            self.marks.hit("fault.db_error")
            self.queue.note("fault.db_error", worker=worker)
        elif fault == "lock_contention":
            self.hold_write_lock(worker)
        elif fault == "external_timeout":
            self._time_out(worker)

    def _time_out(self, worker: str) -> None:
        """The external call applied; its answer is lost. The worker, still waiting on it,
        gets a TimeoutError where it waits, and fails the attempt."""
        self.marks.hit("fault.external_timeout")
        self.queue.note("fault.external_timeout", worker=worker)
        attempt = self._running.pop(worker)
        self._acting = worker
        try:
            ending = attempt.throw(TimeoutError("no answer from the external call"))
        finally:
            self._acting = None
        self._last_step[worker] = ending

    def _pause(self, worker: str, seconds: float) -> None:
        self._paused_until[worker] = self.clock.now() + seconds
        self.marks.hit("fault.pause")
        self.queue.note("fault.pause", worker=worker, seconds=seconds)

    def hold_write_lock(self, worker: str) -> None:
        """Another process holds the write lock as `worker`'s next transaction begins."""
        self._contended.add(worker)
        self.marks.hit("fault.lock_contention")
        self.queue.note("fault.lock_contention", worker=worker)

    def _before_transaction(self) -> None:
        """The store's seam: fail the acting worker's next transaction when armed, or meet
        it with another writer's lock: a store that waits for the lock (lever
        `wait_for_write_lock`) gets it when that writer commits; one that does not is
        refused at once, as SQLite refuses with no busy timeout (SQLITE_BUSY)."""
        acting = self._acting
        if acting in self._db_error_armed:
            self._db_error_armed.discard(acting)
            raise sqlite3.OperationalError("disk I/O error (injected by the simulator)")
        if acting in self._contended:
            self._contended.discard(acting)
            if self.scenario.policies.wait_for_write_lock:
                self.marks.hit("lock.waited")
                return
            busy = sqlite3.OperationalError("database is locked (injected by the simulator)")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
            raise busy

    def _submit(self, tx: Tx, job: JobSpec) -> int:
        queue = self.queue
        job_id = queue.enqueue(tx, job.kind, dict(job.payload), idempotency_key=job.key)
        if "duplicate_delivery" in self.active_sites and self.choices.maybe(
            ("duplicate_delivery",), self.scenario.mix.firing, f"fault at submit of job {job_id}"
        ):
            self.marks.hit("fault.duplicate_delivery")
            tx.event(self.clock.now(), "fault.duplicate_delivery", job=job_id, key=job.key)
            queue.enqueue(tx, job.kind, dict(job.payload), idempotency_key=job.key)
        return job_id

    # --- internals: checking ---------------------------------------------------------

    def _check(self, *, final: bool) -> None:
        for violation in self.monitor.check(final=final):
            self._violations.setdefault(str(violation), violation)
        if self.scenario.rebuild_views and any(
            e.type in FAILURE_EVENTS for e in self.monitor.fresh
        ):
            self._unviewed_failures = True

    def _stopped(self) -> bool:
        if self.stop_on is None or not self._violations:
            return False
        violated = self._violations.values()
        return self._stop_at is None or any(v.inv in self._stop_at for v in violated)

    def _state_hash(self, actor: str, step: str | None) -> str:
        m = self.monitor
        state = (
            self.steps,
            actor,
            step,
            self.clock.now(),
            [(e.seq, e.at, e.type, e.job_id, e.execution_id, e.worker, e.detail) for e in m.fresh],
            [tuple(row.values()) for row in m.jobs.values()],
            [tuple(row.values()) for row in m.executions.values()],
            [tuple(row.values()) for row in m.effects.values()],
        )
        return hashlib.blake2b(repr(state).encode(), digest_size=8).hexdigest()


_RUN_STORES: ContextVar[Callable[[], Any] | None] = ContextVar("run_stores", default=None)


@contextmanager
def runs_on(make_store: Callable[[], Any]) -> Iterator[None]:
    """Run every simulation begun inside on a store `make_store` makes (one per run, or
    one per exploration, which wipes it for each seed), instead of in-memory SQLite: the
    seam that runs the catalog's worlds on PostgreSQL. The timeline must not change."""
    token = _RUN_STORES.set(make_store)
    try:
        yield
    finally:
        _RUN_STORES.reset(token)


def new_run_store() -> Any:
    """A store for an exploration's runs: in-memory SQLite, unless `runs_on` says."""
    make = _RUN_STORES.get()
    return Store.memory() if make is None else make()


_WATCHED: bytes | None = None


def _watched_image() -> bytes:
    """An empty lab database with the monitor's change capture in it, made once per process."""
    global _WATCHED
    if _WATCHED is None:
        store = Store.memory()
        install_watch(store)
        _WATCHED = store.image()
        store.close()
    return _WATCHED
