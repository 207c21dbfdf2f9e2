"""Quiet hours: the local hours in which a citizen does not want non-urgent posts.

A bulk post that reaches a citizen inside their quiet hours is *held*: the citizen's id is
recorded with the moment the quiet hours end, and the post is expanded for them then (with the
profile they have at that moment). Urgent alerts ignore quiet hours. The index stores a
citizen's quiet hours as `[start, end]` in minutes after local midnight; `start > end` spans
midnight (22:00–07:00); `start == end` means none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sirene.schemas import QuietHours


def window_of(hours: QuietHours | None) -> list[int] | None:
    """`[start, end]` minutes after local midnight, or None (no quiet hours)."""
    if hours is None:
        return None
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in (hours.start, hours.end))
    if start == end or not (0 <= start < 1440 and 0 <= end < 1440):
        return None
    return [start, end]


class QuietClock:
    """Answers, for one moment, whether a window is quiet and when it ends (as a UTC epoch
    second, cached per end minute: a chunk of citizens costs a few comparisons each)."""

    def __init__(self, now: datetime, zone: ZoneInfo) -> None:
        self.local = now.astimezone(zone)
        self.minute = self.local.hour * 60 + self.local.minute
        self._ends: dict[int, int] = {}

    def held_until(self, window: list[int]) -> int | None:
        """The epoch second the quiet hours end if the moment lies inside them, else None."""
        start, end = window
        m = self.minute
        if not (start <= m < end if start < end else m >= start or m < end):
            return None
        due = self._ends.get(end)
        if due is None:
            local = self.local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
            if local <= self.local:
                # the next day's end, in wall-clock time (a DST change keeps 07:00 at 07:00)
                nxt = (self.local + timedelta(days=1)).date()
                local = datetime(
                    nxt.year, nxt.month, nxt.day, end // 60, end % 60, tzinfo=self.local.tzinfo
                )
            due = self._ends[end] = int(local.astimezone(UTC).timestamp())
        return due
