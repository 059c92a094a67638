"""Energy per interval between consecutive readings: counters first, power as fallback."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.engine.model import F64, I64, MachineReadings

MS_PER_H = 3_600_000.0
# A counter step may exceed rated power x elapsed time by this much before it is called
# implausible: timestamps jitter by a few percent (the node stamps when it publishes, not
# when it sampled) and counters are quantised (PZEM: 1 Wh; SDM float32 kWh: ~1 Wh at
# 10 MWh), so a 1-second interval on a small machine can legitimately step by 1 Wh.
JUMP_REL_TOL = 0.10
JUMP_ABS_TOL_WH = 1.0


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of each interval i (reading i to i + 1) and what had to be repaired."""

    wh: F64  # len(readings) - 1 values, never negative for valid input
    counter_resets: int
    implausible_jumps: int
    gaps: int
    gap_s: float


def _glitches(wh: F64, bad: I64, bound: F64) -> I64:
    """Readings whose counter alone is wrong: both neighbouring intervals are bad, but the
    counter goes on from before to after it plausibly (a corrupt Modbus read, a bit flip).
    """
    i = bad[:-1][np.diff(bad) == 1]  # intervals i and i + 1 both bad: reading i + 1 suspect
    i = i[i + 2 < len(wh)]
    bridge = wh[i + 2] - wh[i]
    plausible = (bridge >= 0.0) & (bridge <= bound[i] + bound[i + 1])
    return np.asarray(i[plausible] + 1, dtype=np.int64)


def interval_energy(
    readings: MachineReadings, dt_ms: I64, rated_w: float, max_gap_s: float
) -> IntervalEnergy:
    """Counter difference where both ends carry a plausible counter, else trapezoid of power.

    dt_ms is np.diff(readings.t_ms), shared with the caller. The trapezoid is never taken
    across an interval longer than max_gap_s: that energy is unknown, counted as a gap,
    and contributes 0.
    """
    dt_h = dt_ms / MS_PER_H
    w = readings.watts
    energy = (w[:-1] + w[1:]) * 0.5 * dt_h
    long = dt_ms > max_gap_s * 1000.0
    energy[long] = 0.0
    unknown = long

    d = np.diff(readings.wh)  # NaN where either end has no counter
    resets = jumps = 0
    counted = ~np.isnan(d)
    if counted.any():
        bound = dt_h * (rated_w * (1.0 + JUMP_REL_TOL)) + JUMP_ABS_TOL_WH
        went_down = d < 0.0
        too_big = d > bound
        glitch = _glitches(readings.wh, np.flatnonzero(went_down | too_big), bound)
        # A glitch is one implausible reading, not a jump plus a reset: both intervals
        # around it fall back to power.
        for flags in (went_down, too_big, counted):
            flags[glitch - 1] = flags[glitch] = False
        resets = int(np.count_nonzero(went_down))
        jumps = int(np.count_nonzero(too_big)) + len(glitch)
        # After a reset the counter restarted from 0, so its new value is the energy since
        # the reset (the energy before it, in the same interval, is lost: at most one
        # reading's worth). A new value too big for that is a swapped meter: use power.
        since = readings.wh[1:]
        use_since = went_down & (since >= 0.0) & (since <= bound)
        use_diff = counted & ~went_down & ~too_big
        energy[use_diff] = d[use_diff]
        energy[use_since] = since[use_since]
        unknown = long & ~(use_diff | use_since)
    return IntervalEnergy(
        wh=energy,
        counter_resets=resets,
        implausible_jumps=jumps,
        gaps=int(np.count_nonzero(unknown)),
        gap_s=float(dt_ms[unknown].sum()) / 1000.0,
    )
