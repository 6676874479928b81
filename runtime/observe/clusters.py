"""Failure clusters: failures of one type bunched in one window of time.

The rule is deterministic and its counts are true: time is cut into fixed windows of
WINDOW_S seconds (aligned to 0), and a cluster is a (type, window) holding at least
AT_LEAST failures, with the real count, however many. The table is derived and
disposable: `rebuild` wipes it and writes the fresh computation in one transaction, so
running it twice, or after a wipe, leaves the same rows.
"""

import math
from collections import defaultdict
from dataclasses import dataclass

from runtime.observe import derived
from runtime.observe.failures import Failure, failures
from runtime.policies import GUARDED, Policies
from runtime.store import Store

TABLE = "failure_clusters"
WINDOW_S = 600.0
AT_LEAST = 3


@dataclass(frozen=True)
class Cluster:
    type: str
    window_start: float
    window_end: float
    failures: int
    first_seq: int
    last_seq: int


def compute(store: Store, upto_seq: int | None = None) -> list[Cluster]:
    """The clusters the log holds now (or held at event `upto_seq`), by type, then window."""
    return clusters_of(failures(store, upto_seq))


def clusters_of(found: list[Failure]) -> list[Cluster]:
    groups: dict[tuple[str, int], list[Failure]] = defaultdict(list)
    for failure in found:
        groups[failure.type, math.floor(failure.at / WINDOW_S)].append(failure)
    return [
        Cluster(
            type=type_,
            window_start=window * WINDOW_S,
            window_end=(window + 1) * WINDOW_S,
            failures=len(members),
            first_seq=min(f.seq for f in members),
            last_seq=max(f.seq for f in members),
        )
        for (type_, window), members in sorted(groups.items())
        if len(members) >= AT_LEAST
    ]


def stored(store: Store) -> list[Cluster]:
    """The clusters as last rebuilt (none on a database from before them)."""
    if store.schema_version() < 4:
        return []
    rows = store.tuples(
        "SELECT type, window_start, window_end, failures, first_seq, last_seq"
        " FROM failure_clusters ORDER BY type, window_start"
    )
    return [Cluster(*row) for row in rows]


def rebuild(store: Store, at: float, policies: Policies = GUARDED) -> list[Cluster]:
    """Replace the stored clusters with a fresh computation, in one transaction (without
    lever `replace_derived`: add this run's counts to the stored ones, FM_014)."""
    return derived.replace_all(
        store,
        at,
        TABLE,
        lambda upto: compute(store, upto),
        replace=policies.replace_derived,
        accumulate="failures = failures + excluded.failures, last_seq = excluded.last_seq",
    )
