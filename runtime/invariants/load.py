"""INV_009: the retries offered to a dependency stay within the bound it states."""

import bisect
from typing import NamedTuple

from runtime.invariants.evidence import Evidence, Violation
from runtime.monitor import Monitor
from runtime.store import Event

# --- INV_009 -------------------------------------------------------------------------


class Retry(NamedTuple):
    at: float
    seq: int
    job: int
    execution: int


def fold_retry_load(m: Monitor, event: Event) -> None:
    """Note each dependency's stated bound, and every retry offered to it, in time order
    (a call is a retry when its attempt is not the job's first)."""
    if event.type == "dependency.declared":
        m.retry_bounds[event.detail["sink"]] = (
            event.detail["retries_max"],
            event.detail["window_s"],
            event.seq,
        )
    elif event.type == "dependency.called" and event.detail["attempt"] > 1:
        sink = event.detail["sink"]
        bisect.insort(
            m.retries[sink],
            Retry(event.at, event.seq, event.job_id or 0, event.execution_id or 0),
        )
        m.retries_touched.add(sink)


def densest(retries: list[Retry], window_s: float) -> list[Retry]:
    """The most retries that fall within one window of `window_s` seconds (the earliest
    such run, when several tie)."""
    best: list[Retry] = []
    start = 0
    for end, retry in enumerate(retries):
        while retry.at - retries[start].at >= window_s:
            start += 1
        if end + 1 - start > len(best):
            best = retries[start : end + 1]
    return best


def check_retry_load(m: Monitor, final: bool) -> list[Violation]:
    """INV_009: retries offered to a dependency stay within the bound it states.

    First attempts are the work itself; retries are the load a client adds on top, and
    the backoff decides whether they arrive together. Counted from our own log of the
    calls, against the bound the dependency declared."""
    if not m.retry_bounds:
        return []
    sinks = sorted(m.retries if final else m.retries_touched)
    m.retries_touched = set()
    violations = []
    for sink in sinks:
        if sink not in m.retry_bounds:
            continue
        retries_max, window_s, declared = m.retry_bounds[sink]
        burst = densest(m.retries[sink], window_s)
        if len(burst) <= retries_max:
            continue
        violations.append(
            Violation(
                "INV_009",
                f"{len(burst)} retries reached {sink} within {window_s:g} s (from "
                f"{burst[0].at:.3f} to {burst[-1].at:.3f}); it states at most {retries_max}",
                Evidence(
                    tuple(sorted({r.job for r in burst})),
                    tuple(sorted({r.execution for r in burst})),
                    (declared, *sorted(r.seq for r in burst)),
                ),
            )
        )
    return violations
