"""The demand (capacity) charge: the site's 15-minute averages, the month's peak, and the
peak's cost shared out by energy, in whole cents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import numpy.typing as npt

from gateway.engine.model import F64, I64
from gateway.engine.split import energy_before

QUARTER_MS = 15 * 60 * 1000  # utilities meter demand as 15-minute average power
_KW_PLACES = Decimal("0.001")


def printed_kw(quarter_wh: float) -> Decimal:
    """A quarter hour's average power: Wh in 15 minutes x 4 / 1000, printed with 3 decimals
    (and priced as printed)."""
    return (Decimal(repr(quarter_wh)) * 4 / 1000).quantize(_KW_PLACES, ROUND_HALF_UP)


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


# A quarter hour mostly without readings: the state after engine/states.py's OFF, IDLE,
# RUNNING (0, 1, 2), which quarter_states counts by their values.
NO_DATA = 3


def quarter_states(
    t: I64, states: npt.NDArray[np.int8], max_gap_ms: float, starts: I64
) -> npt.NDArray[np.int8]:
    """The state a machine spent most of each quarter hour in (starts: consecutive quarter
    hours), NO_DATA where its readings cover less than half of it.

    Each interval takes the state of the reading that ends it (a reading's power is the
    mean since the one before) and counts whole in the quarter hour it ends in: a picture,
    off by at most max_gap_ms at a quarter hour's edge. An interval longer than max_gap_ms
    is no data, as it is for the engine's power integration.
    """
    n = len(starts)
    if len(t) < 2 or not n:
        return np.full(n, NO_DATA, dtype=np.int8)
    # The intervals ending in (first start, last end]: one ending on an edge is before it.
    a, b = np.searchsorted(t, [starts[0], starts[-1] + QUARTER_MS], side="right")
    a, b = max(int(a), 1), int(b)
    dt = (t[a:b] - t[a - 1 : b - 1]).astype(np.float64)
    dt[dt > max_gap_ms] = 0.0
    quarter = (t[a:b] - 1 - starts[0]) // QUARTER_MS
    spent = np.bincount(quarter * 3 + states[a:b], weights=dt, minlength=3 * n).reshape(n, 3)
    found: npt.NDArray[np.int8] = np.argmax(spent, axis=1).astype(np.int8)
    found[spent.sum(axis=1) < QUARTER_MS / 2] = NO_DATA
    return found


def site_quarter_wh(energy: Iterable[tuple[I64, F64]], starts: I64) -> F64:
    """The site's energy in each quarter hour starting at `starts`: the machines' (reading
    times, interval energies) summed."""
    site = np.zeros(len(starts))
    for t, wh in energy:
        if len(t) > 1:
            site += quarter_hour_wh(t, wh, starts)
    return site


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


def peak_index(site_wh: F64) -> int:
    """The quarter hour with the most energy, the earliest on a tie; -1 when none has any.

    Differences of cumulative sums carry float noise: energies are compared to the mWh
    (far below the printed 1 W), so equal quarter hours tie.
    """
    if not len(site_wh) or site_wh.max() <= 0.0:
        return -1
    return int(np.argmax(np.round(site_wh, 3)))


@dataclass(frozen=True, slots=True)
class LiveDemand:
    """The month's demand so far, at the newest reading: what the live `demand` point shows."""

    at_ms: int  # the site's newest reading
    peak_start_ms: int | None  # the month's highest quarter hour so far (None: no energy)
    peak_wh: float  # its energy
    running_wh: float  # the site's energy in the 15 minutes up to at_ms

    @property
    def peak_kw(self) -> Decimal:
        """The peak's average power, as `bill` prints it."""
        return printed_kw(self.peak_wh)

    @property
    def running_kw(self) -> Decimal:
        """The running 15-minute average power, printed the same way."""
        return printed_kw(self.running_wh)

    def warns(self, fraction: float) -> bool:
        """Whether the running average has reached `fraction` of the peak so far."""
        return fraction > 0.0 and self.peak_wh > 0.0 and self.running_wh >= fraction * self.peak_wh
