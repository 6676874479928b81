"""Time as an input, never a global.

Prior art: trio's MockClock. Every runtime module reads time from a Clock passed in, so a
test can stop, jump or step time and get the same timeline every run. Times are float
seconds; SimClock starts at 0.0 so timelines read as "seconds since the run began".
"""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock's own scale."""
        ...


class SimClock:
    """A clock that moves only when told to.

    `advance(seconds)` moves forward; `set(t)` jumps to an absolute time, backwards
    included, because a wall clock can step backwards (NTP, a VM restore) and failure
    modes need to show it. `advance` refuses negative steps: going back is a deliberate
    `set`, never an accident.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time can't go backwards with advance(); use set() to step back")
        self._now += seconds
        return self._now

    def set(self, t: float) -> float:
        self._now = float(t)
        return self._now

    def __repr__(self) -> str:
        return f"SimClock(now={self._now:.3f})"


class WallClock:
    """One process's wall clock: the time authority's reading plus an offset that a step
    (NTP correcting a drift, a VM restored from a snapshot, an operator) changes at once.

    The simulator gives each worker one. Nothing in the runtime should read it for a
    deadline: with lever `store_clock` (GUARDED) none does (FM_010).
    """

    def __init__(self, authority: Clock) -> None:
        self.authority = authority
        self.offset = 0.0

    def now(self) -> float:
        return self.authority.now() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds

    def __repr__(self) -> str:
        return f"WallClock(offset={self.offset:+.3f})"


class SystemClock:
    """The real clock, for real workers. The only place the runtime reads the wall."""

    def now(self) -> float:
        return time.time()  # noqa: TID251 - the one sanctioned read of real time


class _ReadsTime(Protocol):
    def now(self) -> float: ...


class DatabaseClock:
    """The database server's clock, read on every `now()`: the one time authority that
    workers on several machines share (lever `store_clock`; FM_010). Each machine's own
    clock drifts and steps on its own; a lease set by one and checked by another is only
    as good as their agreement, and the server's clock needs no agreement."""

    def __init__(self, store: _ReadsTime) -> None:
        self._store = store

    def now(self) -> float:
        return self._store.now()
