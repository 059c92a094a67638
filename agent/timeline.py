"""The shop's true power over any span of time: simulated days, loaded as time reaches them.

A live simulation runs for minutes or days from any start; underneath, each local day of
the shop is one `simulate_shop_day` (the same days `shopwatt demo` shows for the same seed
and plan), and the true power between its one-second samples is linear. Only the last
few days stay in memory.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from agent.power import I8, PowerSeries
from agent.shopday import ShopDay, simulate_shop_day
from agent.shopplan import ShopPlan
from gateway.engine.model import F64, I64

_KEEP_DAYS = 3  # a window can reach back across midnight; the truth looks back a day


class ShopTimeline:
    """The plan's machines' true power, day after day, for one seed."""

    def __init__(self, plan: ShopPlan, seed: int, schedule: Path | None = None) -> None:
        self.plan = plan
        self.seed = seed
        self.schedule = schedule
        self.tz = plan.site.tz
        self._days: OrderedDict[dt.date, ShopDay] = OrderedDict()
        self._lock = threading.Lock()

    def local_date(self, t_ms: int) -> dt.date:
        """The shop's local date at a UTC instant."""
        return dt.datetime.fromtimestamp(t_ms / 1000, self.tz).date()

    def day(self, date: dt.date) -> ShopDay:
        """One simulated local day (computed once, the last few kept)."""
        with self._lock:  # simulated meters ask from their server's thread
            if date not in self._days:
                self._days[date] = simulate_shop_day(
                    self.seed, date, plan=self.plan, schedule=self.schedule
                )
                while len(self._days) > _KEEP_DAYS:
                    self._days.popitem(last=False)
            self._days.move_to_end(date)
            return self._days[date]

    def _series(self, machine: str, t_ms: int) -> PowerSeries:
        return self.day(self.local_date(t_ms)).power[machine]

    def power_at(self, machine: str, t_ms: F64) -> tuple[F64, I8]:
        """True power (linear between samples) and state at the instants t_ms (sorted)."""
        first = self._series(machine, int(t_ms[0]))
        last = self._series(machine, int(t_ms[-1]))
        if first is last:
            return _interpolate(first, t_ms)
        late = t_ms >= last.t_ms[0]  # the instants after midnight belong to the next day
        w0, s0 = _interpolate(first, t_ms[~late])
        w1, s1 = _interpolate(last, t_ms[late])
        return np.concatenate((w0, w1)), np.concatenate((s0, s1))

    def energy_wh(self, machine: str, start_ms: int, end_ms: int) -> float:
        """True energy between two instants (any number of midnights apart)."""
        total = 0.0
        t = start_ms
        while True:
            series = self._series(machine, t)
            day_end = int(series.t_ms[-1])
            if end_ms <= day_end:
                return total + _energy_to(series, end_ms) - _energy_to(series, t)
            total += _energy_to(series, day_end) - _energy_to(series, t)
            # The second from the day's last sample to the next midnight: power held.
            gap_ms = int(series.t_ms[-1] - series.t_ms[-2])
            total += float(series.watts[-1]) * gap_ms / 3.6e6
            t = day_end + gap_ms


def _step_ms(series: PowerSeries) -> float:
    return float(series.t_ms[1] - series.t_ms[0])


def _position(series: PowerSeries, t_ms: F64) -> tuple[I64, I64, F64]:
    """Sample indices before and after t, and t's fraction of the way between them."""
    x = (t_ms - series.t_ms[0]) / _step_ms(series)
    last = len(series.t_ms) - 1
    i = np.clip(np.floor(x).astype(np.int64), 0, last)
    return i, np.minimum(i + 1, last), np.clip(x - i, 0.0, 1.0)


def _interpolate(series: PowerSeries, t_ms: F64) -> tuple[F64, I8]:
    i, j, f = _position(series, t_ms)
    w = series.watts
    return w[i] + f * (w[j] - w[i]), series.state[i]


def _energy_to(series: PowerSeries, t_ms: int) -> float:
    """The day's cumulative true energy at t (exact for the linear signal)."""
    i, j, f = _position(series, np.array([float(t_ms)]))
    w = series.watts
    part = (w[i] * f + 0.5 * (w[j] - w[i]) * f * f) * _step_ms(series) / 3.6e6
    return float(series.energy_wh[i][0] + part[0])
