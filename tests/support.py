"""What the runtime-level tests share: one set of explicit policies, one order, one queue.

The policies are spelled out in full, so a changed default in runtime/policies.py cannot
silently change what these tests prove.
"""

import random

from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.policies import Policies
from runtime.queue import Queue
from runtime.store import Store

POLICIES = Policies(
    commit_boundary=True,
    lease_s=30.0,
    attempts_max=3,
    retry_delay_s_base=1.0,
    retry_delay_s_max=60.0,
)
POINTS = Effect(sink="ledger", key="order-1001", detail={"points": 50})
ORDER = {"order": 1001, "points": 50}


def new_queue(policies: Policies = POLICIES, *, seed: int = 0) -> tuple[Queue, SimClock]:
    """A queue over a fresh in-memory store, on a SimClock at 0.0, with seeded jitter."""
    clock = SimClock(start=0.0)
    return Queue(Store.memory(), clock, random.Random(seed), policies), clock
