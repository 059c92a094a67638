"""Energy per interval between consecutive readings: counters first, power as fallback."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.config import Metered
from gateway.engine.localtime import iso_utc
from gateway.engine.model import F64, I64, MachineReadings
from gateway.errors import InputError

MS_PER_H = 3_600_000.0
# A counter step may exceed rated power x elapsed time by this much before it is called
# implausible: timestamps jitter by a few percent (the node stamps when it publishes, not
# when it sampled), and a counter that moves in steps of `counter_resolution_wh` can show
# one whole step more than the energy of the interval (0.1 kWh for an EM24, 1 mWh for a
# shopwatt sensor): the step the meter had nearly completed before the interval began.
JUMP_REL_TOL = 0.10
# Intervals are scanned in chunks that stay in the CPU cache: every step of a chunk
# (lengths, long gaps, counter steps, checks) then costs one trip to memory, and no
# whole-array temporary pays a page fault per 4 KiB on first touch.
_CHUNK = 1 << 15
_NONE = np.zeros(0, dtype=np.int64)
_NONE.setflags(write=False)
# Energies are whole multiples of 2^-24 Wh (60 nWh, far below any meter's resolution).
# Sums of them below 2^29 Wh (537 MWh) are exact in any order and grouping, so rows
# computed in two pieces add up to the bit to the rows of one (the live recompute carries
# the part of a day before a checkpoint instead of recomputing it; ledger/recompute.py).
_EXACT_BITS = 24


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy of each interval i (reading i to i + 1) and what had to be repaired."""

    wh: F64  # len(readings) - 1 values, never negative for valid input
    long_iv: I64  # intervals longer than max_gap_s (power is not integrated across them)
    counter_resets: int
    implausible_jumps: int
    gaps: int  # long intervals without a usable counter: energy unknown, 0 Wh
    gap_s: float


def exact_wh(wh: F64) -> F64:
    """Energies rounded to the nearest multiple of 2^-24 Wh (see _EXACT_BITS)."""
    return np.asarray(np.ldexp(np.rint(np.ldexp(wh, _EXACT_BITS)), -_EXACT_BITS), np.float64)


def _dt_ms(t: I64, i: I64) -> F64:
    """Length of the intervals i in ms."""
    return np.asarray(t[i + 1] - t[i], dtype=np.float64)


class JumpBound:
    """The most energy a counter may plausibly add over dt_ms at rated power."""

    def __init__(self, rated_w: float, resolution_wh: float) -> None:
        self.wh_per_ms = rated_w * (1.0 + JUMP_REL_TOL) / MS_PER_H
        self.resolution_wh = resolution_wh

    def __call__(self, dt_ms: F64 | float) -> F64:
        return np.asarray(np.multiply(dt_ms, self.wh_per_ms) + self.resolution_wh, np.float64)


def _trapezoid(t: I64, w: F64, i: I64) -> F64:
    """Trapezoid energy (Wh) of the intervals i."""
    return np.asarray((w[i] + w[i + 1]) * _dt_ms(t, i) * (0.5 / MS_PER_H), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Flat:
    """Intervals whose counter did not move, as runs [first, end) (a machine switched off
    makes long runs: two numbers each instead of one index per interval), and those of
    them with power (the only ones a coarse counter's step is shared with).
    """

    first: I64
    end: I64
    moving: I64


_NO_FLAT = _Flat(_NONE, _NONE, _NONE)


@dataclass(frozen=True, slots=True)
class _Found:
    """What the scan of one chunk found, as interval indices of the whole series."""

    long_iv: I64  # longer than max_gap_s
    long_by_power: I64  # ... of those, the ones without a counter: energy unknown
    suspects: I64  # counter went down, or rose faster than rated power allows
    flat: _Flat  # counter on both ends, and it did not move (none longer than max_gap_s)
    shortest_ms: float  # <= 0: the times are not increasing


def _suspects(d: F64, lowest: float, shortest_ms: float, dt_ms: I64, bound: JumpBound) -> I64:
    """Counter steps that go down or exceed the plausible bound for their interval.

    Normally there are none: two reductions prove it against the tightest bound (that of
    the shortest interval); otherwise the steps above it are checked one by one.
    """
    tight = float(bound(shortest_ms))
    if lowest >= 0.0 and d.max() <= tight:
        return _NONE
    cand = np.flatnonzero((d < 0.0) | (d > tight))
    return cand[(d[cand] < 0.0) | (d[cand] > bound(dt_ms[cand].astype(np.float64)))]


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[I64, I64]:
    """Runs of True in mask as [first, end) index pairs."""
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # bool != is an edge finder
    if mask[0]:
        edges = np.concatenate([[0], edges])
    if mask[-1]:
        edges = np.concatenate([edges, [len(mask)]])
    return edges[0::2], edges[1::2]


def _flat(d: F64, w: F64, long_iv: I64, a: int) -> _Flat:
    """Intervals a, a + 1, ... no longer than max_gap_s whose counter d did not move
    (w: the readings of the intervals d, plus one).
    """
    flat = d == 0.0  # NaN == 0 is False: only intervals with a counter
    flat[long_iv] = False
    first, end = _runs(flat)
    if not len(first):
        return _NO_FLAT
    flat &= np.add(w[:-1], w[1:]) > 0.0
    return _Flat(first + a, end + a, np.flatnonzero(flat) + a)


def _scan(t: I64, w: F64, wh: F64, out: F64, a: int, max_gap_ms: int, bound: JumpBound) -> _Found:
    """Energy of the intervals a..a+len(out)-1 into out: the counter difference where both
    ends have a counter, else the trapezoid of power (repairs come later).
    """
    b = a + len(out)
    dt = t[a + 1 : b + 1] - t[a:b]
    shortest = float(dt.min())
    long_iv = np.flatnonzero(dt > max_gap_ms) if dt.max() > max_gap_ms else _NONE
    # Power only (clip-on sensors without a counter): no counter difference to take. fmax
    # skips NaN, so it is NaN only when no reading has a counter.
    if np.isnan(wh[a]) and np.isnan(np.fmax.reduce(wh[a : b + 1])):
        _trapezoid_into(out, w[a : b + 1], dt)
        return _Found(long_iv + a, long_iv + a, _NONE, _NO_FLAT, shortest)
    d = np.subtract(wh[a + 1 : b + 1], wh[a:b], out=out)  # NaN where an end has no counter
    lowest = float(d.min())
    if not np.isnan(lowest):  # counters everywhere (meters)
        flat = _flat(d, w[a : b + 1], long_iv, a) if lowest <= 0.0 else _NO_FLAT
        suspects = _suspects(d, lowest, shortest, dt, bound)
        return _Found(long_iv + a, _NONE, suspects + a, flat, shortest)
    no_counter = np.isnan(d)
    flat = _flat(d, w[a : b + 1], long_iv, a)
    d[no_counter] = 0.0  # a mix: nothing to suspect where there is no counter
    suspects = _suspects(d, float(d.min()), shortest, dt, bound)
    power = np.empty(len(out))
    _trapezoid_into(power, w[a : b + 1], dt)
    np.copyto(out, power, where=no_counter)
    by_power = long_iv[no_counter[long_iv]] + a
    return _Found(long_iv + a, by_power, suspects + a, flat, shortest)


def _trapezoid_into(out: F64, w: F64, dt_ms: I64) -> None:
    """Trapezoid energy (Wh) of consecutive readings w over intervals dt_ms, into out."""
    np.add(w[:-1], w[1:], out=out)
    out *= dt_ms
    out *= 0.5 / MS_PER_H


def _glitches(t: I64, wh: F64, bad: I64, bound: JumpBound) -> I64:
    """Readings whose counter alone is wrong: both neighbouring intervals are bad, but the
    counter goes on from before to after it plausibly (a corrupt Modbus read, a bit flip).
    """
    i = bad[:-1][np.diff(bad) == 1]  # intervals i and i + 1 both bad: reading i + 1 suspect
    bridge = wh[i + 2] - wh[i]
    # Two readings' slack: each end of the bridge may be off by one counter step.
    both = bound(_dt_ms(t, i) + _dt_ms(t, i + 1)) + bound.resolution_wh
    found = i[(bridge >= 0.0) & (bridge <= both)] + 1
    # Two bad readings in a row are no glitch: the second would bridge over the first.
    return np.asarray(found[np.diff(found, prepend=-2) > 1], dtype=np.int64)


def _spread(t: I64, w: F64, energy: F64, idx: I64, starts: I64, total: F64) -> None:
    """Give each group of intervals idx[starts[k]:starts[k + 1]] the energy total[k].

    Inside a group the energy is shared by power; a group whose power is 0 throughout
    (the counter moved below the power's resolution) shares it by time instead.
    """
    dt = _dt_ms(t, idx)
    power = _trapezoid(t, w, idx)
    lengths = np.diff(starts, append=len(idx))
    by_time = np.repeat(np.add.reduceat(power, starts) <= 0.0, lengths)
    weight = np.where(by_time, dt, power)
    energy[idx] = weight * np.repeat(total / np.add.reduceat(weight, starts), lengths)


def _coarse_steps(
    t: I64, w: F64, wh: F64, energy: F64, flat: _Flat, not_plain: I64, bound: JumpBound
) -> None:
    """Share each counter step with the flat intervals before it, by power.

    A coarse counter (0.1 kWh on an EM24) stays flat for several polls, then moves a whole
    step: the step is the truth for the span since the counter last moved, so it is spread
    over that span (exact over the span, by power inside it) instead of landing on the one
    interval where the meter happened to tick over. `flat` are the intervals no longer
    than max_gap_s whose counter did not move (a run of them ends at the step that closes
    it); `not_plain` the intervals whose energy is not a plain counter difference
    (repaired, or longer than max_gap_s).
    """
    first, step, moving = flat.first, flat.end, flat.moving
    if not len(first):
        return
    step_end = np.minimum(step + 1, len(wh) - 1)
    # Few flat intervals have power (the one where a machine was switched off, or all of a
    # coarse counter's); the long flat runs of a machine that is off have none.
    run_of_moving = np.searchsorted(first, moving, side="right") - 1
    held = np.bincount(run_of_moving, _trapezoid(t, w, moving), minlength=len(first))
    powered = held > 0.0
    # Only a plain counter step closes a span; a flat run before a repair, a long interval,
    # a missing counter or the end of the data keeps its 0 (the counter has not told yet).
    # A run without power before a step with power changes nothing: skipped. A flat run
    # can hold back less than one step (else the counter would have moved): where power
    # says more (a machine that starts on the reading that ends the run: 0 W, then 3 kW),
    # the counter is right and the run keeps its 0. Power may read high like time stamps.
    limit = bound.resolution_wh * (1.0 + JUMP_REL_TOL)
    ok = (powered | (w[step] + w[step_end] <= 0.0)) & (held < limit) & (step < len(energy))
    ok[ok] = ~np.isnan(wh[step_end[ok]]) & ~np.isin(step[ok], not_plain)
    ok[ok] = energy[step[ok]] > 0.0
    if not ok.any():
        return
    # The flat intervals with power take their shares (the others' weight is 0); a span
    # without any power is shared by time, so all of its intervals take part.
    by_time = ok & ~powered
    n_flat = (step - first)[by_time]
    unpowered = np.arange(int(n_flat.sum()), dtype=np.int64) + np.repeat(
        first[by_time] - (np.cumsum(n_flat) - n_flat), n_flat
    )
    idx = np.sort(np.concatenate([moving[ok[run_of_moving]], unpowered, step[ok]]))
    _spread(t, w, energy, idx, np.searchsorted(idx, first[ok]), energy[step[ok]])


def _flat_runs(found: list[_Found]) -> _Flat:
    """The chunks' flat runs as one: a run that reaches the end of its chunk goes on in
    the next chunk when that one's first run starts right there.
    """
    first = np.concatenate([_NONE, *(f.flat.first for f in found)])
    end = np.concatenate([_NONE, *(f.flat.end for f in found)])
    moving = np.concatenate([_NONE, *(f.flat.moving for f in found)])
    joined = first[1:] == end[:-1]
    if joined.any():
        first = first[np.concatenate([[True], ~joined])]
        end = end[np.concatenate([~joined, [True]])]
    return _Flat(first, end, moving)


def interval_energy(machine_id: str, readings: MachineReadings, machine: Metered) -> IntervalEnergy:
    """Counter difference where both ends carry a plausible counter, else trapezoid of power.

    Power is never integrated across an interval longer than max_gap_s: that energy is
    unknown, counted as a gap, and contributes 0. A counter difference is exact across any
    interval, so a long interval with good counters is no gap.
    """
    t, w, wh = readings.t_ms, readings.watts, readings.wh
    bound = JumpBound(machine.rated_w, machine.counter_resolution_wh)
    # An integer bound: the intervals are whole ms (dt > x exactly when dt > floor(x)), and
    # int64 against a float would convert every interval length to compare it.
    long_ms = math.floor(machine.max_gap_s * 1000.0)
    energy = np.empty(max(len(t) - 1, 0))
    found = [
        _scan(t, w, wh, energy[a : a + _CHUNK], a, long_ms, bound)
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
    # A glitch is one implausible reading, not a jump plus a reset. The counters on both
    # sides of it are good, so their difference is the energy of both intervals, at any
    # cadence (a 15-minute meter too): it is shared between them by power.
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
    power = np.concatenate([jumped, went_down[~restarted]])
    energy[power] = _trapezoid(t, w, power)
    pairs = np.stack([glitch - 1, glitch], axis=1).ravel()
    bridge = wh[glitch + 1] - wh[glitch - 1]
    _spread(t, w, energy, pairs, np.arange(0, len(pairs), 2), bridge)
    repaired = np.concatenate([long_iv, went_down, power, glitch - 1, glitch])
    _coarse_steps(t, w, wh, energy, _flat_runs(found), repaired, bound)
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
