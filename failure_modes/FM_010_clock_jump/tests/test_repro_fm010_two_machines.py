"""FM_010 between two real machines: their wall clocks disagree, and a lease set on one
is judged on another.

Two `fmlab worker` processes share one queue on PostgreSQL; `slow`'s wall clock is 45 s
behind `fast`'s and the server's (failure_modes/FM_010_clock_jump/machines.py). Without
lever `store_clock`, `slow` writes each lease's deadline on its own clock: 2 s after a time
that, by the server's clock, passed 45 s ago. Its own clock says the lease has its full 2 s,
so its start, commit and ack go through; `fmlab check`, replaying the log on the server's
time (which stamps every event), finds writes made 43 s after the lease expired.

Needs the PostgreSQL server of `make pg-up` (skipped without one when run by hand; CI
always has one). A campaign: `make gate` and `make test-fm10` run it.
"""

import pytest

from failure_modes.FM_010_clock_jump.machines import run_two_machines


@pytest.mark.campaign
def test_a_worker_whose_clock_is_behind_writes_on_leases_already_expired(pg_schemas, tmp_path):
    outcome = run_two_machines(pg_schemas.new_url(), tmp_path, "store_clock")

    assert outcome.check_exit == 1, outcome.report
    assert "VERDICT: violated INV_007" in outcome.report
    # Each report names the write, the time the server stamped it and the lease it relied
    # on: 43 s gone (45 s of skew, less the 2 s lease).
    late = [line for line in outcome.report.splitlines() if "after its lease expired" in line]
    assert late, outcome.report
    assert outcome.acked["slow"] > 0  # slow finished work on leases that were never valid
