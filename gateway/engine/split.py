"""Split cumulative energy at band edges, local midnights and job edges; sum per row."""

from __future__ import annotations

import numpy as np

from gateway.engine.calendar import Calendar
from gateway.engine.jobs import JobSpans
from gateway.engine.model import F64, I64


def cumulative_at(x: I64, t: I64, cum: F64 | I64) -> F64:
    """A cumulative quantity known at the readings, at instants x (uniform inside intervals).

    Before the first reading it is cum[0], after the last cum[-1]. Same as np.interp, but
    stays on the int64 times instead of converting millions of them to float.
    """
    if len(t) == 1:
        return np.full(len(x), float(cum[0]))
    i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2)
    frac = np.clip((x - t[i]) / (t[i + 1] - t[i]), 0.0, 1.0)
    return np.asarray(cum[i] + frac * (cum[i + 1] - cum[i]), dtype=np.float64)


def split_energy(t: I64, cum_wh: F64, cal: Calendar, jobs: JobSpans, n_bands: int) -> F64:
    """Energy per (row, band): rows 0..len(jobs)-1 are the jobs, then one per calendar day.

    Between consecutive cut points (band edges, midnights, job edges) nothing changes the
    label, so each piece's energy is a difference of the cumulative energy there; the
    pieces telescope, so the rows add up to cum_wh[-1] - cum_wh[0] by construction.
    """
    first, last = t[0], t[-1]
    cuts = np.concatenate([cal.midnights, cal.band_edges, jobs.start_ms, jobs.end_ms])
    cuts = np.unique(np.concatenate([[first], cuts[(cuts > first) & (cuts < last)], [last]]))
    piece_start = cuts[:-1]
    piece_wh = np.diff(cumulative_at(cuts, t, cum_wh))

    n_jobs = len(jobs)
    j = np.searchsorted(jobs.start_ms, piece_start, side="right") - 1
    in_job = (j >= 0) & (piece_start < jobs.end_ms[np.maximum(j, 0)]) if n_jobs else j >= 0
    row = np.where(in_job, j, n_jobs + cal.day_index(piece_start))
    n_rows = n_jobs + len(cal.midnights) - 1
    flat = np.bincount(
        row * n_bands + cal.band_index(piece_start), weights=piece_wh, minlength=n_rows * n_bands
    )
    return np.asarray(flat, dtype=np.float64).reshape(n_rows, n_bands)
