"""The anti-replay window against RFC 4303 §3.4.3 / Appendix A and a plain set-based model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikelab.esp.replay import ReplayWindow


def accept(window: ReplayWindow, seq: int) -> bool:
    if not window.check(seq):
        return False
    window.update(seq)
    return True


def test_fresh_window_accepts_1_and_never_0():
    window = ReplayWindow()
    assert not window.check(0)
    assert accept(window, 1)
    assert not window.check(1)


def test_left_edge_is_inside_and_one_more_is_outside():
    window = ReplayWindow(64)
    assert accept(window, 100)
    assert window.check(37)  # 100 - 63: the oldest number the window still covers
    assert not window.check(36)
    assert "older than the window 37..100 of 64" in window.explain(36)


@pytest.mark.parametrize("jump, remembered", [(63, True), (64, False), (10**9, False)])
def test_advancing_shifts_the_bitmap(jump, remembered):
    window = ReplayWindow(64)
    accept(window, 10)
    accept(window, 10 + jump)
    # After a jump of 63, 10 sits on the left edge and is still known as received; after 64 it has
    # fallen off and is refused as too old. Either way it is refused, for different reasons.
    assert not window.check(10)
    assert ("already received" in window.explain(10)) is remembered
    assert window.received()[0] == 10 + jump
    assert (10 in window.received()) is remembered


def test_largest_sequence_number_and_huge_jumps_stay_cheap():
    window = ReplayWindow(64)
    accept(window, 1)
    assert accept(window, 2**32 - 1)  # a shift of 2^32 bits would take 512 MiB; this must not
    assert window.received() == [2**32 - 1]


def test_out_of_order_fill_of_the_whole_window():
    window = ReplayWindow(32)
    for seq in range(32, 0, -1):
        assert accept(window, seq)
    assert window.received() == list(range(32, 0, -1))
    assert not any(window.check(seq) for seq in range(33))
    assert window.check(33)


def test_update_outside_the_window_is_a_programming_error():
    window = ReplayWindow(8)
    accept(window, 100)
    with pytest.raises(ValueError, match="outside the window"):
        window.update(50)


def test_window_size_must_be_positive():
    with pytest.raises(ValueError):
        ReplayWindow(0)


@settings(max_examples=200, deadline=None)
@given(
    size=st.sampled_from([1, 2, 32, 64, 128]),
    arrivals=st.lists(st.integers(0, 300), max_size=120),
)
def test_matches_a_set_model(size, arrivals):
    """Accept iff the number is positive, new, and within `size` of the highest one accepted."""
    window, seen = ReplayWindow(size), set()
    for seq in arrivals:
        expected = seq > 0 and seq not in seen and seq > max(seen, default=0) - size
        assert accept(window, seq) == expected, (seq, sorted(seen))
        if expected:
            seen.add(seq)
    assert window.received() == sorted((s for s in seen if s > window.top - size), reverse=True)
