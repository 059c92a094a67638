"""Local wall-clock times -> UTC milliseconds, DST-correct and deterministic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def utc_ms(moment: datetime) -> int:
    """An aware datetime -> integer milliseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // _MS


def local_date(t_ms: int, tz: ZoneInfo) -> date:
    """The local calendar date of a UTC instant."""
    return (_EPOCH + timedelta(milliseconds=t_ms)).astimezone(tz).date()


def _wall(seconds: int, tz: ZoneInfo) -> datetime:
    """The naive wall-clock reading at a UTC instant given in whole seconds."""
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(tz).replace(tzinfo=None)


def wall_to_utc_ms(wall: datetime, tz: ZoneInfo) -> int:
    """First UTC instant whose local wall clock reads `wall` or later.

    This is the one rule for DST: a wall time that occurs twice (fall back) means its
    first occurrence; a wall time that never occurs (spring forward) means the instant
    the clock jumps over it. So a window [start, end) holds exactly the instants whose
    wall clock reads inside it (except the repeated hour, which is counted once).
    """
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return utc_ms(first)
    # In the gap, fold=1 reads the wall time with the later (larger) offset, fold=0 with
    # the earlier one: the transition lies between them. tzdata transitions fall on whole
    # seconds, so a bisection over seconds finds it exactly.
    lo = utc_ms(wall.replace(tzinfo=tz, fold=1)) // 1000
    hi = utc_ms(first) // 1000
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, tz) >= wall:
            hi = mid
        else:
            lo = mid
    return hi * 1000


def local_minute_to_utc_ms(day: date, minute: int, tz: ZoneInfo) -> int:
    """`minute` minutes of wall-clock time after the local midnight of `day` -> UTC ms.

    Minutes count on the wall clock (24:00 is the next midnight, 30:00 is 06:00 the next
    day), so a band's 16:00 is 16:00 on a 23- or 25-hour day too.
    """
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return wall_to_utc_ms(wall, tz)


def iso_utc(t_ms: int) -> str:
    """UTC instant as ISO 8601 with 'Z', for messages."""
    moment = _EPOCH + timedelta(milliseconds=t_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
