"""Price series in the ledger (`shopwatt prices import`): slots per series, in UTC ms."""

from __future__ import annotations

import sqlite3

import numpy as np

from gateway.config import Tariff
from gateway.engine.model import PriceSlots


def spot_series(tariff: Tariff) -> list[str]:
    """The series the tariff's versions price energy with, in version order."""
    names = [v.spot.series for v in tariff.versions if v.spot]
    return list(dict.fromkeys(names))


def co2_series(tariff: Tariff) -> list[str]:
    """The carbon-intensity series the tariff's versions count CO2 with."""
    return list(dict.fromkeys(v.co2_series for v in tariff.versions if v.co2_series))


def store(conn: sqlite3.Connection, series: str, slots: PriceSlots) -> int:
    """Replace the series' slots that overlap the new ones' span; how many were replaced."""
    lo, hi = int(slots.start_ms[0]), int(slots.end_ms[-1])
    span = (series, hi, lo)
    replaced = conn.execute(
        "SELECT COUNT(*) FROM prices WHERE series = ? AND start_ms < ? AND end_ms > ?", span
    ).fetchone()[0]
    conn.execute("DELETE FROM prices WHERE series = ? AND start_ms < ? AND end_ms > ?", span)
    rows = zip(slots.start_ms.tolist(), slots.end_ms.tolist(), slots.price.tolist(), strict=True)
    conn.executemany(
        "INSERT INTO prices VALUES (?, ?, ?, ?)", [(series, a, b, p) for a, b, p in rows]
    )
    return int(replaced)


def load(conn: sqlite3.Connection, series: str, lo: int, hi: int) -> PriceSlots:
    """The series' slots that overlap [lo, hi), sorted."""
    found = conn.execute(
        "SELECT start_ms, end_ms, price FROM prices WHERE series = ? AND start_ms < ? "
        "AND end_ms > ? ORDER BY start_ms",
        (series, hi, lo),
    ).fetchall()
    a = np.array([f[0] for f in found], dtype=np.int64)
    b = np.array([f[1] for f in found], dtype=np.int64)
    return PriceSlots(a, b, np.array([f[2] for f in found], dtype=np.float64))


def tariff_slots(
    conn: sqlite3.Connection, tariff: Tariff, lo: int, hi: int
) -> dict[str, PriceSlots]:
    """The slots overlapping [lo, hi) of every series the tariff prices energy with."""
    return {name: load(conn, name, lo, hi) for name in spot_series(tariff)}
