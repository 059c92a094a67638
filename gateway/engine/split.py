"""Split energy at band edges, local midnights and job edges; sum it per row and band."""

from __future__ import annotations

import numpy as np

from gateway.engine.jobs import JobSpans
from gateway.engine.localtime import Calendar
from gateway.engine.model import F64, I64


def energy_before(x: I64, t: I64, interval_wh: F64) -> F64:
    """Energy from the first reading up to each instant x (sorted); uniform inside intervals.

    Only the few cut points need it, so instead of a cumulative sum over every interval
    (a slow sequential pass) the intervals between consecutive cut points are summed with
    one np.add.reduceat, and the interval holding a cut point contributes pro rata.
    """
    n_iv = len(interval_wh)
    if n_iv == 0:
        return np.zeros(len(x))
    i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, n_iv)  # n_iv: at/after the end
    starts = np.unique(np.concatenate([[0], i[i < n_iv]]))
    done = np.concatenate([[0.0], np.cumsum(np.add.reduceat(interval_wh, starts))])
    before = done[np.searchsorted(starts, i)]  # sum of the intervals before interval i
    inner = np.minimum(i, n_iv - 1)
    frac = np.clip((x - t[inner]) / (t[inner + 1] - t[inner]), 0.0, 1.0)
    return np.asarray(before + np.where(i < n_iv, frac * interval_wh[inner], 0.0), np.float64)


def split_energy(t: I64, interval_wh: F64, cal: Calendar, jobs: JobSpans, n_cols: int) -> F64:
    """Energy per (row, priced column): rows 0..len(jobs)-1 are the jobs, then one per day.

    A priced column is a tariff version and band (Tariff.columns). Between consecutive
    cut points (version and band edges, midnights, job edges) nothing changes the label,
    so each piece's energy is a difference of the energy before its ends; the pieces
    telescope, so all rows add up to the metered energy by construction.
    """
    first, last = t[0], t[-1]
    cuts = np.concatenate([cal.midnights, cal.band_edges, jobs.start_ms, jobs.end_ms])
    cuts = np.unique(np.concatenate([[first], cuts[(cuts > first) & (cuts < last)], [last]]))
    piece_start = cuts[:-1]
    piece_wh = np.diff(energy_before(cuts, t, interval_wh))

    n_jobs = len(jobs)
    j = np.searchsorted(jobs.start_ms, piece_start, side="right") - 1
    in_job = (j >= 0) & (piece_start < jobs.end_ms[np.maximum(j, 0)]) if n_jobs else j >= 0
    row = np.where(in_job, j, n_jobs + cal.day_index(piece_start))
    n_rows = n_jobs + len(cal.midnights) - 1
    flat = np.bincount(
        row * n_cols + cal.column_index(piece_start), weights=piece_wh, minlength=n_rows * n_cols
    )
    return np.asarray(flat, dtype=np.float64).reshape(n_rows, n_cols)


def by_band(priced_wh: F64, column_band: I64, n_bands: int) -> F64:
    """Energy per (row, band name): the columns of one band in every tariff version added."""
    out = np.zeros((len(priced_wh), n_bands))
    np.add.at(out.T, column_band, priced_wh.T)  # out.T is a view of out
    return out
