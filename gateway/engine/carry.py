"""A machine's readings cut at a checkpoint: the rows of the readings up to it and of the
readings from it on add up, to the bit, to the rows of all of them.

The live recompute keeps the rows of a day up to a checkpoint and computes only the
readings after it (ledger/recompute.py). A reading k is a checkpoint when nothing the
engine does reaches across it:
- the interval before it is no longer than max_gap_s, and its counter moved, by no more
  than rated power allows (or it has no counter): no glitch, reset or jump repair and no
  coarse counter's flat run spans reading k (the readings from k on decide the rest);
- the machine runs at readings k - 1 and k, for min_job_s or more (the job running
  through k is one up to k, and goes on after it as a Held job: same start, same id), or
  it ran neither at k nor within merge_gap_s and max_gap_s before it (no job before k can
  grow past it);
- energies are exact multiples of 2^-24 Wh (energy.exact_wh), so the two parts' sums
  add up exactly (spot costs are sums of float products: days priced by a spot series
  are not cut).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from gateway.config import Machine
from gateway.engine.energy import JumpBound
from gateway.engine.jobs import Held, detect_jobs
from gateway.engine.model import I64, CostRow, MachineReadings
from gateway.engine.states import running_stretches


def checkpoints(
    r: MachineReadings, machine: Machine, held_from: int | None = None
) -> tuple[I64, NDArray[np.bool_]]:
    """The readings the rows can be cut at (not the first), sorted; and for each, whether
    a job runs through it. held_from: the start of the job running at the first reading."""
    t, w, wh = r.t_ms, r.watts, r.wh
    n = len(t)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    dt = np.diff(t)
    step = np.diff(wh)  # NaN where an end has no counter
    bound = JumpBound(machine.rated_w, machine.counter_resolution_wh)
    plain = (step > 0.0) & (step <= bound(dt.astype(np.float64)))
    short = dt <= math.floor(machine.max_gap_s * 1000.0)
    clean = short & (plain | np.isnan(step))
    k = np.arange(1, n)
    running = w > machine.run_above_w
    stretches = running_stretches(w, machine.run_above_w, np.flatnonzero(~short))
    jobs = detect_jobs(
        t, stretches, machine, held=None if held_from is None else Held(held_from, "")
    )
    # When the detected job around each reading began (none: the largest int64): the job
    # up to a reading is one too when it had run min_job_s by then.
    j = np.maximum(np.searchsorted(jobs.start_ms, t, side="right") - 1, 0)
    began = np.full(n, np.iinfo(np.int64).max)
    if len(jobs):
        inside = (jobs.start_ms[j] <= t) & (t <= jobs.end_ms[j])
        began[inside] = jobs.start_ms[j[inside]]
    held = running[k - 1] & running[k] & (t[k] - began[k] >= machine.min_job_s * 1000.0)
    # The last running reading at or before each reading (-1: none in these readings).
    last_run = np.maximum.accumulate(np.where(running, np.arange(n), -1))[k]
    reach = int(max(machine.merge_gap_s, machine.max_gap_s) * 1000)
    seen = t[k] - reach >= t[0]  # the readings reach back far enough to tell
    quiet = seen & ~running[k] & ((last_run < 0) | (t[np.maximum(last_run, 0)] <= t[k] - reach))
    ok = clean[k - 1] & (held | quiet)
    return k[ok], held[ok]


def join_rows(head: list[CostRow], tail: list[CostRow]) -> list[CostRow]:
    """The rows up to a checkpoint and from it on as one list, sorted as the engine sorts:
    the job running through it and its day's overhead row are each added into one row."""
    later = {_key(row): row for row in tail}
    joined = [_added(row, later.pop(_key(row))) if _key(row) in later else row for row in head]
    joined += later.values()
    joined.sort(key=lambda r: (r.start_ms, r.kind == "job", r.job_id))
    return joined


def _key(row: CostRow) -> tuple[str, str, int]:
    return row.kind, row.job_id, row.start_ms


def _added(head: CostRow, tail: CostRow) -> CostRow:
    """One row from its part before a checkpoint and its part after (the later one's end,
    day and open state)."""
    # run_s are whole ms / 1000 (states.RunTime): added as ms, as one run would count them.
    run_ms = round(head.run_s * 1000.0) + round(tail.run_s * 1000.0)
    return replace(
        tail,
        run_s=run_ms / 1000.0,
        band_wh=_sum(head.band_wh, tail.band_wh),
        priced_wh=_sum(head.priced_wh, tail.priced_wh),
        spot_cost=head.spot_cost + tail.spot_cost,
        fallback_wh=head.fallback_wh + tail.fallback_wh,
    )


def _sum(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))
