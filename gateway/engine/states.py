"""Machine states per reading, running stretches, and the running time they make up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.config import Machine
from gateway.engine.model import F64, I64

OFF, IDLE, RUNNING = 0, 1, 2


def machine_states(watts: F64, machine: Machine) -> npt.NDArray[np.int8]:
    """0 off (< off_below_w), 1 idle, 2 running (> run_above_w), per reading."""
    states = (watts >= machine.off_below_w).astype(np.int8)
    states[watts > machine.run_above_w] = RUNNING
    return states


@dataclass(frozen=True, slots=True)
class Stretches:
    """Runs of consecutive running readings (indices of the first and last of each run).

    A run is also cut where the interval between two running readings is longer than
    max_gap_s: nobody knows what the machine did in between.
    """

    first: I64
    last: I64

    def __len__(self) -> int:
        return len(self.first)


def running_stretches(watts: F64, run_above_w: float, long_iv: I64) -> Stretches:
    """Stretches of readings above run_above_w (strictly), cut at the long intervals long_iv."""
    running = watts > run_above_w
    change = np.flatnonzero(running[1:] != running[:-1])  # interval i: reading i != i + 1
    rises = change[~running[change]] + 1
    falls = change[running[change]]
    n = len(watts)
    head = [0] if n and running[0] else []
    tail = [n - 1] if n and running[-1] else []
    cut = long_iv[running[long_iv] & running[long_iv + 1]]
    first = np.sort(np.concatenate([head, rises, cut + 1]).astype(np.int64))
    last = np.sort(np.concatenate([falls, tail, cut]).astype(np.int64))
    return Stretches(first, last)


@dataclass(frozen=True, slots=True)
class RunTime:
    """Running time as sorted, disjoint spans [start, end) of UTC ms."""

    start: I64
    end: I64

    def cumulative_ms(self, x: I64) -> F64:
        """Running time before each instant x, in ms."""
        if len(self.start) == 0:
            return np.zeros(len(x))
        length = self.end - self.start
        done = np.concatenate([[0], np.cumsum(length)])  # ms in the spans before span k
        k = np.searchsorted(self.start, x, side="right") - 1  # the last span begun by x
        inside = np.clip(x - self.start[np.maximum(k, 0)], 0, length[np.maximum(k, 0)])
        return np.where(k >= 0, done[np.maximum(k, 0)] + inside, 0.0).astype(np.float64)

    def between_s(self, start: I64, end: I64) -> F64:
        """Running seconds inside each [start[k], end[k]]."""
        return (self.cumulative_ms(end) - self.cumulative_ms(start)) / 1000.0


def run_time(t: I64, stretches: Stretches, long_iv: I64) -> RunTime:
    """An interval is running time when its first reading runs and it is not a long gap.

    Inside a stretch every interval qualifies; the interval after a stretch's last reading
    does too (the machine ran until the next reading showed otherwise), unless it is long.
    """
    after = stretches.last + 1
    extends = after < len(t)
    if len(long_iv):
        extends[extends] = ~np.isin(stretches.last[extends], long_iv)
    end = t[np.where(extends, after, stretches.last)]
    return RunTime(t[stretches.first], end)
