"""Time is an input: SimClock moves only when told to; SystemClock is the one wall reader.

Every timeline in the lab is reproducible because the runtime never reads the wall itself.
These tests pin down the two clocks the runtime is given.
"""

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from runtime.clock import SimClock, SystemClock


def test_a_sim_clock_starts_where_it_is_told_and_stands_still():
    """Nothing moves a SimClock but its owner: reading it twice gives the same instant."""
    assert SimClock().now() == 0.0
    clock = SimClock(start=12.5)
    assert clock.now() == clock.now() == 12.5


def test_advance_moves_forward_and_returns_the_new_time():
    clock = SimClock(start=0.0)

    assert clock.advance(30.0) == 30.0
    assert clock.advance(0.0) == 30.0  # a zero step is allowed: "no time passed"
    assert clock.advance(1.5) == 31.5
    assert clock.now() == 31.5


def test_advance_refuses_to_go_backwards():
    """Going back by accident (a negative step) is a bug in the test; refuse it loudly."""
    clock = SimClock(start=10.0)

    with pytest.raises(ValueError, match="time can't go backwards"):
        clock.advance(-1)
    assert clock.now() == 10.0  # the refused step changed nothing


def test_set_may_step_backwards_on_purpose():
    """A wall clock can step back (NTP, a VM restore); failure modes need to show that."""
    clock = SimClock(start=0.0)
    clock.advance(100.0)

    assert clock.set(40.0) == 40.0
    assert clock.now() == 40.0
    assert clock.advance(5.0) == 45.0  # and time carries on from there


def test_the_system_clock_reads_the_wall_which_freezegun_can_stop():
    """SystemClock reads `time.time()`, so a frozen wall freezes it and a tick moves it."""
    instant = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    clock = SystemClock()

    with freeze_time(instant) as frozen:
        assert clock.now() == instant.timestamp()
        assert clock.now() == instant.timestamp()  # frozen means frozen
        frozen.tick(7.5)
        assert clock.now() == instant.timestamp() + 7.5
