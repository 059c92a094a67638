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
# Intervals are scanned in chunks that stay in the CPU cache: every step of a chunk
# (lengths, long gaps, counter steps, checks) then costs one trip to memory, and no
# whole-array temporary pays a page fault per 4 KiB on first touch.
_CHUNK = 1 << 15
_NONE = np.zeros(0, dtype=np.int64)
_NONE.setflags(write=False)


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


@dataclass(frozen=True, slots=True)
class _Found:
    """What the scan of one chunk found, as interval indices of the whole series."""

    long_iv: I64  # longer than max_gap_s
    long_by_power: I64  # ... of those, the ones without a counter: energy unknown
    suspects: I64  # counter went down, or rose faster than rated power allows
    shortest_ms: float  # <= 0: the times are not increasing


def _suspects(d: F64, dt_ms: I64, bound: _Bound) -> I64:
    """Counter steps that go down or exceed the plausible bound for their interval.

    Normally there are none: two reductions prove it against the tightest bound (that of
    the shortest interval); otherwise the steps above it are checked one by one.
    """
    tight = float(bound(float(dt_ms.min())))
    if d.min() >= 0.0 and d.max() <= tight:
        return _NONE
    cand = np.flatnonzero((d < 0.0) | (d > tight))
    return cand[(d[cand] < 0.0) | (d[cand] > bound(dt_ms[cand].astype(np.float64)))]


def _scan(t: I64, w: F64, wh: F64, out: F64, a: int, max_gap_ms: float, bound: _Bound) -> _Found:
    """Energy of the intervals a..a+len(out)-1 into out: the counter difference where both
    ends have a counter, else the trapezoid of power (repairs come later).
    """
    b = a + len(out)
    dt = t[a + 1 : b + 1] - t[a:b]
    long_iv = np.flatnonzero(dt > max_gap_ms) if dt.max() > max_gap_ms else _NONE
    d = np.subtract(wh[a + 1 : b + 1], wh[a:b], out=out)  # NaN where an end has no counter
    if not np.isnan(d.max()):  # counters everywhere (meters)
        return _Found(long_iv + a, _NONE, _suspects(d, dt, bound) + a, float(dt.min()))
    no_counter = np.isnan(d)
    if no_counter.all():  # power only (clip-on sensors without a counter)
        _trapezoid_into(out, w[a : b + 1], dt)
        return _Found(long_iv + a, long_iv + a, _NONE, float(dt.min()))
    d[no_counter] = 0.0  # a mix: nothing to suspect where there is no counter
    suspects = _suspects(d, dt, bound)
    power = np.empty(len(out))
    _trapezoid_into(power, w[a : b + 1], dt)
    np.copyto(out, power, where=no_counter)
    return _Found(long_iv + a, long_iv[no_counter[long_iv]] + a, suspects + a, float(dt.min()))


def _trapezoid_into(out: F64, w: F64, dt_ms: I64) -> None:
    """Trapezoid energy (Wh) of consecutive readings w over intervals dt_ms, into out."""
    np.add(w[:-1], w[1:], out=out)
    out *= dt_ms
    out *= 0.5 / MS_PER_H


def _glitches(t: I64, wh: F64, bad: I64, bound: _Bound) -> I64:
    """Readings whose counter alone is wrong: both neighbouring intervals are bad, but the
    counter goes on from before to after it plausibly (a corrupt Modbus read, a bit flip).
    """
    i = bad[:-1][np.diff(bad) == 1]  # intervals i and i + 1 both bad: reading i + 1 suspect
    bridge = wh[i + 2] - wh[i]
    both = bound(_dt_ms(t, i) + _dt_ms(t, i + 1)) + JUMP_ABS_TOL_WH  # two readings' slack
    return np.asarray(i[(bridge >= 0.0) & (bridge <= both)] + 1, dtype=np.int64)


def interval_energy(machine_id: str, readings: MachineReadings, machine: Machine) -> IntervalEnergy:
    """Counter difference where both ends carry a plausible counter, else trapezoid of power.

    Power is never integrated across an interval longer than max_gap_s: that energy is
    unknown, counted as a gap, and contributes 0. A counter difference is exact across any
    interval, so a long interval with good counters is no gap.
    """
    t, w, wh = readings.t_ms, readings.watts, readings.wh
    bound = _Bound(machine.rated_w)
    energy = np.empty(max(len(t) - 1, 0))
    found = [
        _scan(t, w, wh, energy[a : a + _CHUNK], a, machine.max_gap_s * 1000.0, bound)
        for a in range(0, len(energy), _CHUNK)
    ]
    if found and min(f.shortest_ms for f in found) <= 0:
        at = iso_utc(int(t[np.flatnonzero(t[1:] <= t[:-1])[0] + 1]))
        raise InputError(
            f"machine {machine_id}: readings are not strictly increasing in time at {at}"
        )
    long_iv = np.concatenate([_NONE, *(f.long_iv for f in found)])
    by_power = np.concatenate([_NONE, *(f.long_by_power for f in found)])
    bad = np.concatenate([_NONE, *(f.suspects for f in found)])
    # A glitch is one implausible reading, not a jump plus a reset: both intervals around
    # it fall back to power.
    glitch = _glitches(t, wh, bad, bound)
    bad = np.setdiff1d(bad, np.concatenate([glitch - 1, glitch]))
    went_down = bad[energy[bad] < 0.0]
    jumped = bad[energy[bad] >= 0.0]
    # After a reset the counter restarted from 0, so its new value is the energy since the
    # reset (what came before it in the same interval is lost: at most one reading's
    # worth). A new value too big for that is a swapped meter: use power.
    since = wh[went_down + 1]
    restarted = (since >= 0.0) & (since <= bound(_dt_ms(t, went_down)))
    energy[went_down[restarted]] = since[restarted]
    power = np.concatenate([glitch - 1, glitch, jumped, went_down[~restarted]])
    energy[power] = _trapezoid(t, w, power)
    repaired_long = long_iv[np.isin(long_iv, power)] if len(power) else _NONE
    gaps = np.union1d(by_power, repaired_long) if len(repaired_long) else by_power
    energy[gaps] = 0.0
    return IntervalEnergy(
        wh=energy,
        long_iv=long_iv,
        counter_resets=len(went_down),
        implausible_jumps=len(jumped) + len(glitch),
        gaps=len(gaps),
        gap_s=float(_dt_ms(t, gaps).sum()) / 1000.0,
    )
