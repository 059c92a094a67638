"""What a machine's sensor reports of its true power: lost readings and its Wh counter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.power import PowerSeries
from gateway.engine.model import F64, MachineReadings

B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Outage:
    """Readings the gateway never gets, between two readings it does get."""

    start_ms: int  # the last reading before the gap
    end_ms: int  # the first reading after it
    wh: float  # true energy in between: only a counter (without reset) recovers it
    counter_reset: bool  # the sensor rebooted in the gap and its counter restarted at 0


@dataclass(frozen=True, slots=True)
class SensorView:
    """The readings one sensor delivers."""

    present: B  # False where the reading was lost
    wh: F64  # the reported cumulative counter; NaN for sensors that report power only
    outages: tuple[Outage, ...]

    def readings(self, power: PowerSeries) -> MachineReadings:
        """The delivered readings in the engine's shape."""
        p = self.present
        return MachineReadings(power.t_ms[p], power.watts[p], self.wh[p])


def observe(
    power: PowerSeries,
    *,
    counter: bool,
    counter_start_wh: float,
    lost: Sequence[tuple[int, int]],
    reboots: Sequence[tuple[int, int]],
) -> SensorView:
    """Apply lost sample ranges [a, b) and reboots [a, b) (down, then counter from 0)."""
    n = len(power.t_ms)
    present = np.ones(n, dtype=np.bool_)
    for a, b in [*lost, *reboots]:
        present[a:b] = False
    if not (present[0] and present[-1]):
        raise ValueError("an outage or reboot touches the first or last sample of the series")

    e = power.energy_wh
    # After a reboot the counter counts from its first reading on: energy while it was down
    # is in no counter, and everything before is in a counter value the gateway saw earlier.
    marks = np.array([0, *sorted(b for _, b in reboots)], dtype=np.int64)  # 0: sentinel
    boot = np.searchsorted(marks, np.arange(n), side="right") - 1  # 0: before any reboot
    base = np.where(boot > 0, e[marks[boot]], 0.0)
    start = np.where(boot > 0, 0.0, counter_start_wh)
    wh = start + e - base if counter else np.full(n, np.nan)

    edges = np.flatnonzero(np.diff(present.astype(np.int8)))  # last present, last missing, ...
    before, after = edges[0::2], edges[1::2] + 1
    resets = set(marks[1:].tolist())
    outages = tuple(
        Outage(
            int(power.t_ms[a]),
            int(power.t_ms[b]),
            float(e[b] - e[a]),
            counter and int(b) in resets,
        )
        for a, b in zip(before, after, strict=True)
    )
    return SensorView(present, wh, outages)
