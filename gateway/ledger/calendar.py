"""Local days and accounting periods (calendar months) in the site's time zone."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from gateway.engine.localtime import local_date, local_minute_to_utc_ms
from gateway.errors import LedgerError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def midnight_ms(day: date, tz: ZoneInfo) -> int:
    """The local midnight that starts `day`, in UTC ms (the engine's own DST rule)."""
    return local_minute_to_utc_ms(day, 0, tz)


def day_start_ms(t_ms: int, tz: ZoneInfo) -> int:
    """The local midnight at or before an instant."""
    return midnight_ms(local_date(t_ms, tz), tz)


def next_midnight_ms(t_ms: int, tz: ZoneInfo) -> int:
    """The first local midnight strictly after an instant."""
    return midnight_ms(local_date(t_ms, tz) + timedelta(days=1), tz)


def period_of(day: date) -> str:
    """The accounting period (local calendar month, 'YYYY-MM') that holds a local date."""
    return f"{day.year:04d}-{day.month:02d}"


def first_day(period: str) -> date:
    """The first local date of a period."""
    return date(int(period[:4]), int(period[5:7]), 1)


def next_period(period: str) -> str:
    """The period after this one."""
    day = first_day(period)
    return f"{day.year + day.month // 12:04d}-{day.month % 12 + 1:02d}"


def parse_month(text: str) -> str:
    """'2026-11' -> '2026-11'; anything else is a LedgerError naming the value."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise LedgerError(f"--month = {text!r}: expected a month as YYYY-MM, e.g. 2026-11")
    return match.group(0)


def periods_between(start: date, end: date) -> list[str]:
    """Periods overlapping the local dates [start, end)."""
    if end <= start:
        return []
    periods = [period_of(start)]
    last = period_of(end - timedelta(days=1))
    while periods[-1] != last:
        periods.append(next_period(periods[-1]))
    return periods
