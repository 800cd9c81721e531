"""Presence debouncing and back-off shared by the NFC and PC/SC readers."""

from __future__ import annotations

from drivers.reader_support import Backoff, PresenceDebouncer


def test_card_left_on_reader_is_one_read() -> None:
    d = PresenceDebouncer(absent_after_s=0.3, holdoff_s=1.0)
    assert d.seen("A", 0.0)
    assert not any(d.seen("A", t / 10) for t in range(1, 50))  # polled for 5 s


def test_same_card_again_only_after_removal_plus_holdoff() -> None:
    d = PresenceDebouncer(absent_after_s=0.3, holdoff_s=1.0)
    assert d.seen("A", 0.0)
    d.nothing(0.5)  # gone since 0.0 (last seen): removed at 0.0
    assert not d.seen("A", 0.8)  # back within the hold-off: flicker at the field edge
    d.nothing(1.5)  # removed again at 0.8
    assert not d.seen("A", 1.7)
    d.nothing(2.1)
    assert d.seen("A", 2.8)  # 1.1 s after its last removal (1.7)


def test_another_card_is_read_at_once_and_explicit_removal() -> None:
    d = PresenceDebouncer(absent_after_s=float("inf"), holdoff_s=0.5)
    assert d.seen("A", 0.0)
    assert d.seen("B", 0.1)  # swapped without a gap
    d.removed(0.2)  # B taken away (a PC/SC remove event)
    assert not d.seen("A", 0.3)  # A was last seen at 0.0: still within its hold-off
    d.removed(0.35)
    assert d.seen("B", 0.8)  # 0.6 s after B's removal


def test_backoff_doubles_to_max_and_resets() -> None:
    b = Backoff(0.1, 0.5)
    assert [b.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next_delay() == 0.1
