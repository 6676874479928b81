"""A dependency: another system our jobs call, which can be down and can be overloaded.

A retry is load. While a dependency is down every call fails, and every failed call is
retried; when it comes back, whatever retries fall due together arrive together, and a
system just back on its feet can serve only so many at once. What it cannot serve it
refuses, and each refusal is one more retry. Whether the retries of many jobs arrive
together or spread out is decided by one line of the client's backoff (jitter).

`Dependency` is the world's description of such a system: when it is down, how many
calls it serves in a window, and the bound it states on the retries it can take in one
window (its documented limit; INV_009 holds the client to it). `Remote` is the system
itself during one run: it answers each call, served or refused, from what it has served
so far. The queue logs every call it makes to a declared dependency (`dependency.called`)
with the answer and the attempt, so the load offered is read from our own log.
"""

import random
from collections import deque
from dataclasses import dataclass

from runtime.store import Store

CALLED = "dependency.called"
DECLARED = "dependency.declared"


@dataclass(frozen=True)
class Dependency:
    sink: str
    """The sink of the effects that land in it: each call is one of its external effects."""
    down: tuple[float, float]
    """The outage: calls from the first instant until (not including) the second fail."""
    capacity: int
    """Calls served in any `window_s` once it is up; it refuses the rest as overloaded."""
    window_s: float
    retries_max: int
    """The bound it states: at most this many retries offered in any `window_s` (INV_009)."""
    fail_rate: float = 0.0
    """The share of calls it fails while up, drawn from the run's seeded Random: a flaky
    target, not an outage."""

    def __post_init__(self) -> None:
        if not self.down[0] <= self.down[1]:
            raise ValueError(f"an outage must end after it starts, got {self.down}")
        if self.capacity < 1 or self.retries_max < 1 or self.window_s <= 0:
            raise ValueError("capacity, retries_max and window_s must be positive")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate is a probability, got {self.fail_rate}")


def declare(store: Store, at: float, dependency: Dependency) -> None:
    """Log the dependency and the bound it states (`dependency.declared`), so that a check
    of the log alone knows what to hold the calls to."""
    with store.transaction() as tx:
        tx.event(
            at,
            DECLARED,
            sink=dependency.sink,
            down=list(dependency.down),
            capacity=dependency.capacity,
            window_s=dependency.window_s,
            retries_max=dependency.retries_max,
        )


class Remote:
    """The dependency during one run: it serves a call unless it is down or has served
    `capacity` calls in the last `window_s`."""

    def __init__(self, dependency: Dependency, rng: random.Random | None = None) -> None:
        """`rng` draws which calls a flaky dependency fails; it is needed only then."""
        if dependency.fail_rate and rng is None:
            raise ValueError(f"{dependency.sink} fails calls at random: give it a seeded Random")
        self.dependency = dependency
        self.rng = rng
        self._served: deque[float] = deque()

    def answer(self, now: float) -> str | None:
        """Serve a call made at `now` (None), or say why it is refused."""
        dependency = self.dependency
        start, end = dependency.down
        if start <= now < end:
            return f"{dependency.sink} is down until {end:.3f}"
        served = self._served
        while served and served[0] <= now - dependency.window_s:
            served.popleft()
        if len(served) >= dependency.capacity:
            return (
                f"{dependency.sink} is overloaded: {dependency.capacity} calls served in the"
                f" last {dependency.window_s:g} s"
            )
        if (
            dependency.fail_rate
            and self.rng is not None
            and self.rng.random() < dependency.fail_rate
        ):
            return f"{dependency.sink} failed the call"
        served.append(now)
        return None
