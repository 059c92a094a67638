"""Energy per interval between consecutive readings: counters first, power as fallback."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.config import Machine
from gateway.engine.localtime import iso_utc
from gateway.engine.model import F64, I64, MachineReadings
from gateway.errors import InputError

MS_PER_H = 3_600_000.0
# A counter step may exceed rated power x elapsed time by this much before it is called
# implausible: timestamps jitter by a few percent (the node stamps when it publishes, not
# when it sampled) and counters are quantised (PZEM: 1 Wh; SDM float32 kWh: ~1 Wh at
# 10 MWh), so a 1-second interval on a small machine can legitimately step by 1 Wh.
JUMP_REL_TOL = 0.10
JUMP_ABS_TOL_WH = 1.0
# Whole-array temporaries cost a page fault per 4 KiB on first touch, more than the
# arithmetic itself; the one hot expression with a temporary runs in cache-sized chunks.
_CHUNK = 1 << 15


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of each interval i (reading i to i + 1) and what had to be repaired."""

    wh: F64  # len(readings) - 1 values, never negative for valid input
    long_iv: I64  # intervals longer than max_gap_s (power is not integrated across them)
    counter_resets: int
    implausible_jumps: int
    gaps: int  # long intervals without a usable counter: energy unknown, 0 Wh
    gap_s: float


def _dt_ms(t: I64, i: I64) -> F64:
    """Length of the intervals i in ms."""
    return np.asarray(t[i + 1] - t[i], dtype=np.float64)


class _Bound:
    """The most energy a counter may plausibly add over dt_ms at rated power."""

    def __init__(self, rated_w: float) -> None:
        self.wh_per_ms = rated_w * (1.0 + JUMP_REL_TOL) / MS_PER_H

    def __call__(self, dt_ms: F64 | float) -> F64:
        return np.asarray(np.multiply(dt_ms, self.wh_per_ms) + JUMP_ABS_TOL_WH, np.float64)


def _trapezoid(t: I64, w: F64, i: I64) -> F64:
    """Trapezoid energy (Wh) of the intervals i."""
    return np.asarray((w[i] + w[i + 1]) * _dt_ms(t, i) * (0.5 / MS_PER_H), dtype=np.float64)


def _trapezoid_all(w: F64, dt_ms: F64) -> F64:
    """Trapezoid energy (Wh) of every interval, written over dt_ms (the hot path)."""
    for a in range(0, len(dt_ms), _CHUNK):
        part = dt_ms[a : a + _CHUNK]
        part *= w[a : a + len(part)] + w[a + 1 : a + 1 + len(part)]
        part *= 0.5 / MS_PER_H
    return dt_ms


def _suspects(d: F64, t: I64, dt_min: float, bound: _Bound) -> I64:
    """Intervals whose counter difference went down or exceeds the plausible bound.

    Normally there are none: two reductions prove it. Otherwise a scalar pre-filter with
    the smallest bound of all intervals finds the few candidates to check one by one.
    """
    loose = float(bound(dt_min))
    found = []
    if d.min() < 0.0:
        found.append(np.flatnonzero(d < 0.0))
    if d.max() > loose:
        cand = np.flatnonzero(d > loose)
        found.append(cand[d[cand] > bound(_dt_ms(t, cand))])
    return np.sort(np.concatenate(found)) if found else t[:0]


def _glitches(t: I64, wh: F64, bad: I64, bound: _Bound) -> I64:
    """Readings whose counter alone is wrong: both neighbouring intervals are bad, but the
    counter goes on from before to after it plausibly (a corrupt Modbus read, a bit flip).
    """
    i = bad[:-1][np.diff(bad) == 1]  # intervals i and i + 1 both bad: reading i + 1 suspect
    bridge = wh[i + 2] - wh[i]
    both = bound(_dt_ms(t, i) + _dt_ms(t, i + 1)) + JUMP_ABS_TOL_WH  # two readings' slack
    return np.asarray(i[(bridge >= 0.0) & (bridge <= both)] + 1, dtype=np.int64)


def _interval_lengths(machine_id: str, t: I64, max_gap_s: float) -> tuple[F64, float, I64]:
    """Interval lengths in ms, the shortest one, and the intervals longer than max_gap_s."""
    dt_ms = np.empty(max(len(t) - 1, 0))
    np.subtract(t[1:], t[:-1], out=dt_ms, casting="unsafe")
    if len(dt_ms) == 0:
        return dt_ms, 0.0, np.zeros(0, dtype=np.int64)
    dt_min = float(dt_ms.min())
    if dt_min <= 0:
        at = int(t[np.flatnonzero(dt_ms <= 0)[0] + 1])
        raise InputError(
            f"machine {machine_id}: readings are not strictly increasing in time at {iso_utc(at)}"
        )
    max_gap_ms = max_gap_s * 1000.0
    # Long intervals are rare: one reduction usually proves there are none.
    long_iv = np.flatnonzero(dt_ms > max_gap_ms) if dt_ms.max() > max_gap_ms else t[:0]
    return dt_ms, dt_min, long_iv


def interval_energy(machine_id: str, readings: MachineReadings, machine: Machine) -> IntervalEnergy:
    """Counter difference where both ends carry a plausible counter, else trapezoid of power.

    Power is never integrated across an interval longer than max_gap_s: that energy is
    unknown, counted as a gap, and contributes 0. A counter difference is exact across any
    interval, so a long interval with good counters is no gap.
    """
    t, w, wh = readings.t_ms, readings.watts, readings.wh
    dt_ms, dt_min, long_iv = _interval_lengths(machine_id, t, machine.max_gap_s)
    bound = _Bound(machine.rated_w)
    if len(dt_ms) == 0 or (np.isnan(wh[0]) and np.isnan(wh).all()):
        # Power only (clip-on sensors without a counter): the simple, common case.
        energy = _trapezoid_all(w, dt_ms)
        gap_s = float(_dt_ms(t, long_iv).sum()) / 1000.0
        energy[long_iv] = 0.0
        return IntervalEnergy(energy, long_iv, 0, 0, len(long_iv), gap_s)
    d = np.subtract(wh[1:], wh[:-1], out=dt_ms)  # dt is no longer needed as an array
    counted_long = np.ones(len(long_iv), dtype=bool)
    energy = d  # every reading has a counter (meters): repaired in place below
    if np.isnan(d.max()):  # a mix: counters only where both ends of an interval have one
        no_counter = np.isnan(d)
        by_power = _trapezoid_all(w, np.diff(t).astype(np.float64))
        energy = np.where(no_counter, by_power, d)
        counted_long = ~no_counter[long_iv]
        d[no_counter] = 0.0  # nothing to suspect there
    bad = _suspects(d, t, dt_min, bound)
    # A glitch is one implausible reading, not a jump plus a reset: both intervals around
    # it fall back to power.
    glitch = _glitches(t, wh, bad, bound)
    bad = np.setdiff1d(bad, np.concatenate([glitch - 1, glitch]))
    went_down = bad[d[bad] < 0.0]
    jumped = bad[d[bad] >= 0.0]
    # After a reset the counter restarted from 0, so its new value is the energy since the
    # reset (what came before it in the same interval is lost: at most one reading's
    # worth). A new value too big for that is a swapped meter: use power.
    since = wh[went_down + 1]
    restarted = (since >= 0.0) & (since <= bound(_dt_ms(t, went_down)))
    energy[went_down[restarted]] = since[restarted]
    power = np.concatenate([glitch - 1, glitch, jumped, went_down[~restarted]])
    energy[power] = _trapezoid(t, w, power)
    gaps = long_iv[~counted_long | np.isin(long_iv, power)]
    energy[gaps] = 0.0
    return IntervalEnergy(
        wh=energy,
        long_iv=long_iv,
        counter_resets=len(went_down),
        implausible_jumps=len(jumped) + len(glitch),
        gaps=len(gaps),
        gap_s=float(_dt_ms(t, gaps).sum()) / 1000.0,
    )
