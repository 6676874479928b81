"""Severity: a level for every failure, every cluster and every type, each with its reason.

Derived from the failures and the clusters, never set by hand:

- a failure with attempts left is LOW; one at the third attempt or later is MEDIUM (it is
  being retried again and again); a DEAD one (its budget spent) is HIGH;
- a cluster is HIGH;
- a type with clusters in two or more distinct windows within 24 h is CRITICAL: the
  failure keeps coming back.

Like the clusters, the table is disposable: `rebuild` replaces it with a fresh
computation in one transaction.
"""

import itertools
from dataclasses import dataclass

from runtime.observe import clusters as clustering
from runtime.observe import derived
from runtime.observe.failures import DEAD, failures
from runtime.policies import GUARDED, Policies
from runtime.store import Store

TABLE = "severities"
LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
REPEATED = 3
"""From this attempt on, a failure is a repeated one (MEDIUM)."""
RECURRING_S = 24 * 3600.0
"""Clusters of one type in distinct windows this close together make it CRITICAL."""
_SUBJECTS = ("event", "cluster", "type")


@dataclass(frozen=True)
class Severity:
    subject: str
    """What is rated: a failure `event` (ref: its seq), a `cluster` (ref: type@window
    start) or a failure `type`."""
    ref: str
    level: str
    reason: str


def compute(store: Store, upto_seq: int | None = None) -> list[Severity]:
    """The ratings of the log as it is now (or was at event `upto_seq`)."""
    found = failures(store, upto_seq)
    rated = []
    for failure in found:
        if failure.outcome == DEAD:
            level, why = "HIGH", f"DEAD after attempt {failure.attempt}: its budget is spent"
        elif failure.attempt >= REPEATED:
            level, why = "MEDIUM", f"failed at attempt {failure.attempt}: retried again and again"
        else:
            level, why = "LOW", f"failed at attempt {failure.attempt}, with attempts left"
        rated.append(Severity("event", str(failure.seq), level, f"{failure.type}: {why}"))
    found_clusters = clustering.clusters_of(found)
    for cluster in found_clusters:
        rated.append(
            Severity(
                "cluster",
                _cluster_ref(cluster),
                "HIGH",
                f"{cluster.failures} failures of {cluster.type} between"
                f" {cluster.window_start:.3f} and {cluster.window_end:.3f}",
            )
        )
    for type_ in sorted({c.type for c in found_clusters}):
        starts = sorted(c.window_start for c in found_clusters if c.type == type_)
        recurring = [(a, b) for a, b in itertools.pairwise(starts) if b - a < RECURRING_S]
        if recurring:
            first, second = recurring[0]
            rated.append(
                Severity(
                    "type",
                    type_,
                    "CRITICAL",
                    f"clusters of {type_} in {len(starts)} windows, two of them within 24 h"
                    f" (from {first:.3f} and {second:.3f})",
                )
            )
    return sorted(rated, key=_order)


def stored(store: Store) -> list[Severity]:
    if store.schema_version() < 4:
        return []
    rows = store.tuples("SELECT subject, ref, level, reason FROM severities")
    return sorted((Severity(*row) for row in rows), key=_order)


def rebuild(store: Store, at: float, policies: Policies = GUARDED) -> list[Severity]:
    """Replace the stored ratings with a fresh computation, in one transaction (without
    lever `replace_derived`: keep the stored ones and only add new, FM_014)."""
    return derived.replace_all(
        store, at, TABLE, lambda upto: compute(store, upto), replace=policies.replace_derived
    )


def _cluster_ref(cluster: clustering.Cluster) -> str:
    return f"{cluster.type}@{cluster.window_start:.3f}"


def _order(rating: Severity) -> tuple[int, int, str]:
    number = int(rating.ref) if rating.subject == "event" else 0
    return _SUBJECTS.index(rating.subject), number, rating.ref
