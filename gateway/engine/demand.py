"""The demand (capacity) charge: the site's 15-minute averages, the month's peak, and the
peak's cost shared out by energy, in whole cents."""

from __future__ import annotations

import numpy as np

from gateway.engine.model import F64, I64
from gateway.engine.split import energy_before

QUARTER_MS = 15 * 60 * 1000  # utilities meter demand as 15-minute average power


def quarter_starts(lo_ms: int, hi_ms: int) -> I64:
    """Start of every quarter hour in [lo_ms, hi_ms) (UTC quarter hours are local ones:
    every time zone's offset is a multiple of 15 minutes)."""
    first = -(-lo_ms // QUARTER_MS) * QUARTER_MS
    return np.arange(first, hi_ms, QUARTER_MS, dtype=np.int64)


def energy_between(t: I64, interval_wh: F64, a_ms: I64, b_ms: I64) -> F64:
    """Energy between a_ms[k] and b_ms[k] (a <= b), spread uniformly inside intervals."""
    x = np.concatenate([a_ms, b_ms])
    order = np.argsort(x, kind="stable")
    before = np.empty(len(x))
    before[order] = energy_before(x[order], t, interval_wh)
    return np.asarray(before[len(a_ms) :] - before[: len(a_ms)], dtype=np.float64)


def quarter_hour_wh(t: I64, interval_wh: F64, starts: I64) -> F64:
    """Energy of one machine in each quarter hour starting at `starts`."""
    return energy_between(t, interval_wh, starts, starts + QUARTER_MS)


def share_cents(total_cents: int, weights: F64) -> I64:
    """total_cents shared in proportion to weights, in whole cents that add up exactly.

    Largest remainder: everyone gets the floor of their share, and the cents left over go
    to the largest fractions (the earlier weight on a tie), so no cent is made or lost.
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if total_cents == 0 or w.sum() == 0.0:
        return np.zeros(len(w), dtype=np.int64)
    exact = total_cents * w / w.sum()
    floor: I64 = np.floor(exact).astype(np.int64)
    left = total_cents - int(floor.sum())
    floor[np.argsort(-(exact - floor), kind="stable")[:left]] += 1
    return floor
