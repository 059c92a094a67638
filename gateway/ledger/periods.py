"""Closing periods and the adjustment rows that correct them afterwards.

A closed period's rows are copied to `frozen` and never change. Whenever the latest
computation of a closed period differs from what was frozen (late readings, a new
tariff), the difference becomes an adjustment row in the first open period after it:

    adjustment = current computation - frozen snapshot - adjustments already frozen later

so recomputing any number of times never doubles an adjustment.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.engine.localtime import (
    PLAUSIBLE_FIRST_MS,
    next_period,
    period_dates,
    period_ms,
    period_start,
    periods_between,
)
from gateway.errors import LedgerError
from gateway.ledger.rows import ZERO, Amounts, LedgerRow, OriginKey, insert, select
from gateway.ledger.units import kwh

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Closed:
    """What closing a period froze."""

    period: str
    rows: int  # jobs and overhead rows frozen
    adjustments: int  # pending adjustments of earlier periods frozen with them
    open_jobs: int  # jobs still running at the end of the data: not in the snapshot
    energy_kwh: Decimal  # the sum of the printed kWh of the frozen lines
    total_cents: int


def closed_periods(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """Closed periods -> (closed at, closed by)."""
    found = conn.execute("SELECT period, closed_at, closed_by FROM periods ORDER BY period")
    return {p["period"]: (p["closed_at"], p["closed_by"]) for p in found}


def booked(
    conn: sqlite3.Connection, first: date, end: date, customers: Sequence[str] | None = None
) -> list[LedgerRow]:
    """The lines of the local dates [first, end) as the export prints them: frozen rows of
    closed months; pending adjustments and finished jobs and overhead of open ones
    (`customers`: only theirs)."""
    closed = closed_periods(conn)
    rows: list[LedgerRow] = []
    span = (first.isoformat(), end.isoformat())
    who = "" if customers is None else f" AND customer IN ({', '.join('?' * len(customers))})"
    for period in periods_between(first, end):
        where = "period = ? AND day >= ? AND day < ?" + who
        params = (period, *span, *(customers or ()))
        if period in closed:
            rows += select(conn, "frozen", where, params)
        else:
            rows += select(conn, "adjustments", where, params)
            rows += select(conn, "rows", where + " AND open = 0", params)
    return rows


def parse_month(text: str, option: str = "--month") -> str:
    """'2026-11' -> '2026-11'; anything else is a LedgerError naming the option and value."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise LedgerError(f"{option} = {text!r}: expected a month as YYYY-MM, e.g. 2026-11")
    return match.group(0)


def first_open_after(period: str, closed: Iterable[str]) -> str:
    """The period where corrections of `period` land."""
    closed = set(closed)
    target = next_period(period)
    while target in closed:
        target = next_period(target)
    return target


def end_ms(period: str, tz: ZoneInfo) -> int:
    """The local midnight that ends a period (UTC ms)."""
    return period_ms(period, tz)[1]


def close(
    conn: sqlite3.Connection, period: str, at: str, who: str, now_ms: int, tz: ZoneInfo
) -> Closed:
    """Freeze a period: its rows and the adjustments waiting in it. Call in a transaction.

    now_ms: the wall clock of the caller; a period closes only after it has ended.
    """
    # 9999-12 never ends: no date comes after it (Python's dates stop at year 9999).
    ends = "never" if period == "9999-12" else f"at {period_dates(period)[1]} 00:00"
    if period == "9999-12" or now_ms < end_ms(period, tz):
        # Its last day is not over: readings of it are still to come, and a snapshot taken
        # now would turn all of them into adjustment rows.
        raise LedgerError(
            f"--month = {period!r}: the month has not ended yet in {tz.key} (it ends "
            f"{ends}); close a month only after it is over"
        )
    if end_ms(period, tz) <= PLAUSIBLE_FIRST_MS:
        # Only bad data can be in it; frozen, that data could never be dropped.
        raise LedgerError(
            f"--month = {period!r}: before 2020-01, where no reading can be (a sensor clock "
            "that never synced says 1970): remove such readings with `shopwatt readings drop`"
        )
    closed = closed_periods(conn)
    if period in closed:
        when, by = closed[period]
        raise LedgerError(
            f"{period} is already closed (at {when} by {by}); closed periods never change"
        )
    earlier = conn.execute("SELECT DISTINCT period FROM rows WHERE period < ?", (period,))
    still_open = sorted(p["period"] for p in earlier if p["period"] not in closed)
    if still_open:
        # In order, so that a correction of an earlier month always lands in a later month
        # that is still open, never in one the accountant has already handed over.
        raise LedgerError(
            f"{still_open[0]} is still open: close months in order ({', '.join(still_open)} "
            f"before {period})"
        )
    rows = select(conn, "rows", "period = ? AND open = 0", (period,))
    pending = select(conn, "adjustments", "period = ?", (period,))
    insert(conn, "frozen", [*rows, *pending])
    conn.execute("DELETE FROM adjustments WHERE period = ?", (period,))
    conn.execute("INSERT INTO periods VALUES (?, ?, ?)", (period, at, who))
    open_jobs = conn.execute(
        "SELECT COUNT(*) FROM rows WHERE period = ? AND open = 1", (period,)
    ).fetchone()[0]
    everything = [r.amounts for r in (*rows, *pending)]
    return Closed(
        period=period,
        rows=len(rows),
        adjustments=len(pending),
        open_jobs=open_jobs,
        energy_kwh=sum(
            (kwh(wh) for a in everything for wh in a.band_wh.values()), Decimal("0.000")
        ),
        total_cents=sum(a.total_cents for a in everything),
    )


def refresh_adjustments(conn: sqlite3.Connection, origins: Iterable[str]) -> int:
    """Recompute the pending adjustments of these periods (open ones are skipped)."""
    closed = closed_periods(conn)
    written = 0
    for origin in sorted(set(origins) & set(closed)):
        conn.execute("DELETE FROM adjustments WHERE origin_period = ?", (origin,))
        target = first_open_after(origin, closed)
        current = {
            r.origin_key(): r for r in select(conn, "rows", "period = ? AND open = 0", (origin,))
        }
        settled: dict[OriginKey, tuple[LedgerRow, Amounts]] = {}
        snapshot = select(conn, "frozen", "period = ? AND kind != 'adjustment'", (origin,))
        later = select(conn, "frozen", "origin_period = ?", (origin,))
        for done in (*snapshot, *later):
            key = done.origin_key()
            base, total = settled.get(key, (done, ZERO))
            settled[key] = (base, total + done.amounts)
        fresh = []
        for key in [*current, *(k for k in settled if k not in current)]:
            now = current.get(key)
            was = settled.get(key)
            delta = (now.amounts if now else ZERO) - (was[1] if was else ZERO)
            about = now or (was[0] if was else None)
            if about is not None and not delta.prints_as_zero():
                fresh.append(about.adjusting(origin, target, period_start(target), delta))
        insert(conn, "adjustments", fresh)
        written += len(fresh)
    return written
