"""Unit tests of quiet hours: the window and when it ends, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sirene.fanout.quiet import QuietClock, window_of
from sirene.schemas import QuietHours

BERLIN = ZoneInfo("Europe/Berlin")


def _at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def _utc(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def test_window_in_minutes_and_none_when_empty() -> None:
    assert window_of(QuietHours(start="22:00", end="07:00")) == [1320, 420]
    assert window_of(QuietHours(start="12:30", end="13:15")) == [750, 795]
    assert window_of(QuietHours(start="08:00", end="08:00")) is None
    assert window_of(QuietHours(start="25:00", end="07:00")) is None
    assert window_of(None) is None


def test_a_window_across_midnight_ends_the_next_morning() -> None:
    night = [1320, 420]
    late = QuietClock(_at(2026, 11, 22, 23, 30), BERLIN)
    assert _utc(late.held_until(night)) == _at(2026, 11, 23, 7)
    early = QuietClock(_at(2026, 11, 23, 6, 59), BERLIN)
    assert _utc(early.held_until(night)) == _at(2026, 11, 23, 7)
    assert QuietClock(_at(2026, 11, 23, 7), BERLIN).held_until(night) is None
    assert QuietClock(_at(2026, 11, 23, 12), BERLIN).held_until(night) is None
    assert _utc(QuietClock(_at(2026, 11, 23, 22), BERLIN).held_until(night)) == _at(2026, 11, 24, 7)


def test_a_daytime_window() -> None:
    noon = [720, 780]
    assert _utc(QuietClock(_at(2026, 6, 1, 12, 30), BERLIN).held_until(noon)) == _at(2026, 6, 1, 13)
    assert QuietClock(_at(2026, 6, 1, 13), BERLIN).held_until(noon) is None
    assert QuietClock(_at(2026, 6, 1, 11, 59), BERLIN).held_until(noon) is None


def test_the_end_stays_at_its_wall_clock_time_over_a_dst_change() -> None:
    # night of 28/29 March 2026: clocks go from 02:00 CET to 03:00 CEST
    clock = QuietClock(_at(2026, 3, 28, 23), BERLIN)
    assert _utc(clock.held_until([1320, 420])) == datetime(2026, 3, 29, 5, tzinfo=UTC)
    # night of 24/25 October 2026: back to CET
    clock = QuietClock(_at(2026, 10, 24, 23), BERLIN)
    assert _utc(clock.held_until([1320, 420])) == datetime(2026, 10, 25, 6, tzinfo=UTC)
