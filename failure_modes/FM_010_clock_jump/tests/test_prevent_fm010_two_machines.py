"""FM_010's fix between two real machines: the server's clock is the only one a lease is
set and checked on.

The same two `fmlab worker` processes as the repro, `slow`'s clock 45 s behind, on
PostgreSQL, under GUARDED. Each process's queue takes "now" for a lease from the database
server (`runtime.clock.DatabaseClock`, `SELECT clock_timestamp()`), never from its own
machine: the skew is still there, and nothing reads it. Every invariant holds, and both
machines did part of the work, so the pass is not vacuous.

Needs the PostgreSQL server of `make pg-up` (skipped without one when run by hand; CI
always has one). A campaign: `make gate` and `make test-fm10-fix` run it.
"""

import pytest

from failure_modes.FM_010_clock_jump.machines import JOBS, run_two_machines


@pytest.mark.campaign
def test_two_machines_with_skewed_clocks_agree_on_every_lease(pg_schemas, tmp_path):
    outcome = run_two_machines(pg_schemas.new_url(), tmp_path)

    assert outcome.check_exit == 0, outcome.report
    assert "VERDICT: every invariant holds" in outcome.report
    assert outcome.acked["slow"] > 0 and outcome.acked["fast"] > 0
    assert sum(outcome.acked.values()) == JOBS  # each job taken to the end once
