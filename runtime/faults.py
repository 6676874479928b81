"""Faults: what breaks, where and when. Policies say what guards; faults say what goes wrong.

Two ways to say it:
- a `FaultPlan` is a script: this fault after that worker's n-th arrival at that step,
  for a repro a reader can follow (see runtime.worker.STEPS);
- a `FaultMix` is for exploration: a set of named fault *sites*, each switched on for a
  run with probability `activation` and, once on, firing at each arrival with
  probability `firing`. Two levels, so each seed explores its own mix of faults (swarm
  testing: Groce et al., ISSTA 2012): a run where only pauses are on finds zombie bugs a
  run drowning in crashes never reaches.

The sites, and the failure modes that need them:
- `crash@STEP`: the worker dies right after STEP (FM_001, FM_004, FM_007, FM_012);
- `pause@STEP`: the worker stops right after STEP for longer than its lease, then wakes
  and carries on: a zombie (FM_003);
- `lost_ack`: the worker's acknowledgement never reaches the store (FM_001);
- `duplicate_delivery`: a client's submit is delivered twice, as a client that timed out
  and retried would (FM_008);
- `clock_jump`: the clock steps forward past a lease, or back (FM_010);
- `db_error`: the worker's next transaction fails to begin with an error no wait would
  cure, a disk I/O error (FM_007 and the real-process store);
- `external_timeout`: an external call (runtime.effects) applies, but its answer never
  comes back: the worker fails the attempt and a retry calls again (FM_002);
- `wall_clock_step`: one worker's own wall clock steps forward or back, while the store's
  clock (the time authority) does not (FM_010). Opt-in: a world names it in its mix, so
  the tapes of the worlds written before it stay as they were;
- `client_crash`: the client recording intents (Scenario.clients_record) dies between two
  of its transactions, and the rest of that intent is never written (FM_013). Opt-in too.
- `view_corrupt`: a row of the tickets read model is found damaged (its preview garbled)
  when the rebuilder reconciles the read model (runtime.tickets.world, FM_022). Opt-in.
- `lock_contention`: another process holds the database's write lock as the worker's next
  transaction begins; a store that waits for it gets it when that writer commits, one that
  does not is refused (SQLITE_BUSY, FM_023). Opt-in.
"""

from collections import Counter
from dataclasses import dataclass

from runtime.worker import ENDINGS, STEPS

CRASH_STEPS = ("leased", "started", "effect_applied", "committed")
"""The steps after which a crash or a pause leaves something to recover (after `acked`
there is nothing left to lose)."""
SITES: tuple[str, ...] = (
    *(f"crash@{step}" for step in CRASH_STEPS),
    *(f"pause@{step}" for step in CRASH_STEPS),
    "lost_ack",
    "duplicate_delivery",
    "clock_jump",
    "db_error",
    "external_timeout",
)
"""The sites of `ALL_FAULTS`."""
OPT_IN_SITES: tuple[str, ...] = (
    "wall_clock_step",
    "client_crash",
    "view_corrupt",
    "lock_contention",
)
"""Sites a world must name in its mix to get."""


@dataclass(frozen=True)
class CrashAfter:
    """The worker process dies right after `step`: its in-memory state is gone."""

    step: str
    worker: str | None = None
    occurrence: int = 1


@dataclass(frozen=True)
class PauseAfter:
    """The worker stops for `seconds` after `step` (a GC pause, a stopped VM), then resumes."""

    step: str
    seconds: float
    worker: str | None = None
    occurrence: int = 1


@dataclass(frozen=True)
class AdvanceClock:
    """Time jumps forward by `seconds` right after `step`."""

    step: str
    seconds: float
    worker: str | None = None
    occurrence: int = 1


Fault = CrashAfter | PauseAfter | AdvanceClock


@dataclass(frozen=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        for fault in self.faults:
            if fault.step not in STEPS + ENDINGS:
                raise ValueError(
                    f"unknown step {fault.step!r}; steps are {', '.join(STEPS + ENDINGS)}"
                )
            if fault.occurrence < 1:
                raise ValueError(f"occurrence counts from 1, got {fault.occurrence}")
            if isinstance(fault, PauseAfter | AdvanceClock) and fault.seconds < 0:
                raise ValueError(f"{type(fault).__name__} needs seconds >= 0")


NO_FAULTS = FaultPlan()


class FaultInjector:
    """Says which faults of a plan fire as workers reach their steps."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._arrivals: Counter[int] = Counter()

    def after(self, worker: str, step: str) -> list[Fault]:
        fired = []
        for index, fault in enumerate(self.plan.faults):
            if fault.step != step or fault.worker not in (None, worker):
                continue
            self._arrivals[index] += 1
            if self._arrivals[index] == fault.occurrence:
                fired.append(fault)
        return fired


@dataclass(frozen=True)
class FaultMix:
    """The fault sites an explored run may fire, and how likely each is."""

    sites: tuple[str, ...] = SITES
    activation: float = 0.5
    """p: the chance a site is switched on for a run."""
    firing: float = 0.05
    """q: the chance a switched-on site fires at each arrival. At most one fault fires per
    arrival, so the sites a worker reaches together are one decision on the tape."""

    def __post_init__(self) -> None:
        known = (*SITES, *OPT_IN_SITES)
        unknown = [site for site in self.sites if site not in known]
        if unknown:
            raise ValueError(f"unknown fault sites {unknown}; sites are {', '.join(known)}")
        for name in ("activation", "firing"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")


ALL_FAULTS = FaultMix()
NO_MIX = FaultMix(sites=())
