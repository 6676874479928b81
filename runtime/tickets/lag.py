"""The consistency contract: how far behind the write model a read may be.

The read model trails the write model: a command commits, and its projection lands a
little later. `READ_LAG_MS` states how much later is acceptable. The lag is measured truly,
per version, from the write model's own history: from the moment a command committed a
version (`ticket_changes.at`) to the moment a projection first made the read model hold
that version or a newer one (`ticket.projected`; one projection can cover several
versions). A version that only a rebuild ever carried has no sample.

A read is older than the contract when the row it returns is behind the write model and
the first version it lacks committed more than `READ_LAG_MS` before the read.
"""

import math
from dataclasses import dataclass

from runtime.store import Store
from runtime.tickets.model import PROJECT

READ_LAG_MS = 500
"""How far behind the write model a read may be, in milliseconds."""

_LAGS = """
SELECT p.at - c.at
  FROM events p
  JOIN ticket_changes c
    ON c.ticket_id = json_extract(p.detail, '$.ticket')
   AND c.version > json_extract(p.detail, '$.replaced')
   AND c.version <= json_extract(p.detail, '$.version')
 WHERE p.type = 'ticket.projected'
"""


@dataclass(frozen=True)
class Projection:
    """How the projector is doing: what `GET /metrics` and `fmlab tickets` report."""

    backlog: int
    """Projection jobs not yet done (PENDING or RUNNING)."""
    errors: int
    """Projection attempts that failed."""
    dead: int
    """Projection jobs dead-lettered."""
    samples: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    unprojected_oldest_ms: float = 0.0
    """How long the oldest change the read model lacks has waited (0.0: it lacks none).
    With a backlog it is the lag still to come; with none, a change nothing will project
    (FM_016), which no lag sample can show: a version never projected has no sample."""

    @property
    def stranded(self) -> bool:
        """A change older than the contract is missing and no projection is on its way."""
        return self.backlog == 0 and self.unprojected_oldest_ms > READ_LAG_MS


def lag_samples_ms(store: Store) -> list[float]:
    """Every version's projection lag, in milliseconds, smallest first."""
    return sorted(row[0] * 1000 for row in store.tuples(_LAGS))


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0 < p <= 100) of values sorted ascending; 0.0 of none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


_OLDEST_UNPROJECTED = """
SELECT min(c.at)
  FROM tickets t
  LEFT JOIN ticket_views v ON v.id = t.id
  JOIN ticket_changes c ON c.ticket_id = t.id AND c.version = coalesce(v.version, 0) + 1
 WHERE t.version > coalesce(v.version, 0)
"""


def projection(store: Store, now: float | None = None) -> Projection:
    """How the projector is doing; with `now`, also how long the oldest change the read
    model lacks has waited."""
    lags = lag_samples_ms(store)
    oldest = None if now is None else store.one(_OLDEST_UNPROJECTED)[0]
    jobs = dict(
        store.tuples("SELECT state, count(*) FROM jobs WHERE kind = ? GROUP BY state", (PROJECT,))
    )
    errors = store.one(
        "SELECT count(*) FROM executions e JOIN jobs j ON j.id = e.job_id"
        " WHERE j.kind = ? AND e.status = 'FAILED'",
        (PROJECT,),
    )[0]
    return Projection(
        backlog=jobs.get("PENDING", 0) + jobs.get("RUNNING", 0),
        errors=errors,
        dead=jobs.get("DEAD", 0),
        samples=len(lags),
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
        lag_max_ms=lags[-1] if lags else 0.0,
        unprojected_oldest_ms=0.0 if oldest is None or now is None else (now - oldest) * 1000,
    )


def behind_ms(store: Store, ticket_id: int, view_version: int | None, now: float) -> float:
    """How long the read model has lacked a version of the ticket, as of `now`: since the
    first version it does not hold committed; 0.0 when it holds the newest."""
    first_missing = store.one(
        "SELECT min(at) FROM ticket_changes WHERE ticket_id = ? AND version > ?",
        (ticket_id, view_version or 0),
    )[0]
    return 0.0 if first_missing is None else (now - first_missing) * 1000
