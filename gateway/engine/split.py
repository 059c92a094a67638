"""Split energy at band edges, local midnights and job edges; sum it per row and band; the
spot part of the energy cost per price slot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from gateway.config import Spot, Tariff
from gateway.engine.energy import exact_wh
from gateway.engine.jobs import JobSpans
from gateway.engine.localtime import Calendar
from gateway.engine.model import F64, I64, NO_SLOTS, PriceSlots

Spots = Sequence[tuple[Spot, PriceSlots] | None]


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
    # Exact energies in, exact energies out: then every sum of pieces is exact too.
    part = exact_wh(np.where(i < n_iv, frac * interval_wh[inner], 0.0))
    return np.asarray(before + part, np.float64)


def _pieces(
    t: I64, interval_wh: F64, cal: Calendar, jobs: JobSpans, more_cuts: I64
) -> tuple[I64, F64, I64]:
    """Start, energy and row of each piece between consecutive cut points (version and
    band edges, midnights, job edges, more_cuts): rows 0..len(jobs)-1 are the jobs, then
    one per calendar day."""
    first, last = t[0], t[-1]
    cuts = np.concatenate([cal.midnights, cal.band_edges, jobs.start_ms, jobs.end_ms, more_cuts])
    cuts = np.unique(np.concatenate([[first], cuts[(cuts > first) & (cuts < last)], [last]]))
    piece_start = cuts[:-1]
    piece_wh = np.diff(energy_before(cuts, t, interval_wh))
    n_jobs = len(jobs)
    j = np.searchsorted(jobs.start_ms, piece_start, side="right") - 1
    in_job = (j >= 0) & (piece_start < jobs.end_ms[np.maximum(j, 0)]) if n_jobs else j >= 0
    row = np.where(in_job, j, n_jobs + cal.day_index(piece_start))
    return piece_start, piece_wh, row


def split_energy(t: I64, interval_wh: F64, cal: Calendar, jobs: JobSpans, n_cols: int) -> F64:
    """Energy per (row, priced column): rows 0..len(jobs)-1 are the jobs, then one per day.

    A priced column is a tariff version and band (Tariff.columns). Between consecutive
    cut points nothing changes the label, so each piece's energy is a difference of the
    energy before its ends; the pieces telescope, so all rows add up to the metered energy
    by construction.
    """
    piece_start, piece_wh, row = _pieces(t, interval_wh, cal, jobs, np.zeros(0, np.int64))
    n_rows = len(jobs) + len(cal.midnights) - 1
    flat = np.bincount(
        row * n_cols + cal.column_index(piece_start), weights=piece_wh, minlength=n_rows * n_cols
    )
    return np.asarray(flat, dtype=np.float64).reshape(n_rows, n_cols)


def slot_prices(slots: PriceSlots, t_ms: I64) -> F64:
    """The price of the slot holding each instant; NaN where no slot does."""
    # A sentinel slot that holds nothing keeps the lookups in range (also for no slots).
    start = np.append(slots.start_ms, np.iinfo(np.int64).max)
    end = np.append(slots.end_ms, np.iinfo(np.int64).max)
    i = np.maximum(np.searchsorted(start, t_ms, side="right") - 1, 0)
    inside = (start[i] <= t_ms) & (t_ms < end[i])
    return np.where(inside, np.append(slots.price, np.nan)[i], np.nan)


def slot_weighted_wh(
    t: I64, interval_wh: F64, a: I64, b: I64, slots: PriceSlots, fallback: float
) -> F64:
    """Per span [a[k], b[k]) (a <= b): its energy x the value of the slot holding each
    piece (fallback where no slot does), in Wh x value; energy spread uniformly inside
    intervals, as everywhere."""
    cuts = np.unique(np.concatenate([a, b, slots.start_ms, slots.end_ms]))
    piece_wh = np.diff(energy_before(cuts, t, interval_wh))
    value = slot_prices(slots, cuts[:-1])
    weighted = np.concatenate(
        [[0.0], np.cumsum(piece_wh * np.where(np.isnan(value), fallback, value))]
    )
    return np.asarray(
        weighted[np.searchsorted(cuts, b)] - weighted[np.searchsorted(cuts, a)], dtype=np.float64
    )


def version_spots(
    tariff: Tariff, prices: Mapping[str, PriceSlots]
) -> list[tuple[Spot, PriceSlots] | None]:
    """Per tariff version, its spot settings and the slots of its series (None: no spot
    price); a series not in prices has no slots, so its energy is priced at the fallback."""
    return [
        (v.spot, prices.get(v.spot.series, NO_SLOTS)) if v.spot else None for v in tariff.versions
    ]


def spot_edges(spots: Spots) -> I64:
    """The slot edges of every spot-priced version: cut points that keep a piece in one slot."""
    edges = [np.concatenate([s.start_ms, s.end_ms]) for _, s in filter(None, spots)]
    return np.concatenate(edges) if edges else np.zeros(0, np.int64)


def spot_price(start_ms: I64, version: I64, spots: Spots) -> tuple[F64, NDArray[np.bool_]]:
    """The spot part of the price per kWh of pieces starting at start_ms in the given
    tariff versions, and whether a slot priced it.

    A piece in no slot is priced at its version's fallback (a missing slot is never free);
    a version without spot price adds nothing and needs no slot.
    """
    price = np.zeros(len(start_ms))
    inside = np.ones(len(start_ms), dtype=bool)
    for k, pair in enumerate(spots):
        if pair is None:
            continue
        spot, slots = pair
        mine = version == k
        slot = slot_prices(slots, start_ms[mine])
        found = ~np.isnan(slot)
        price[mine] = np.where(found, slot * spot.factor, spot.fallback)
        inside[mine] = found
    return price, inside


def spot_split(
    t: I64, interval_wh: F64, cal: Calendar, jobs: JobSpans, spots: Spots
) -> tuple[F64, F64]:
    """Per row: the spot part of the energy cost and the energy priced at the fallback.

    spots: per tariff version, its spot settings and price slots (version_spots).
    Slot edges are more cut points, so every piece lies in one slot or in none.
    """
    piece_start, piece_wh, row = _pieces(t, interval_wh, cal, jobs, spot_edges(spots))
    version = cal.column_version[cal.column_index(piece_start)]
    n_rows = len(jobs) + len(cal.midnights) - 1
    price, inside = spot_price(piece_start, version, spots)
    cost = np.bincount(row, weights=piece_wh / 1000.0 * price, minlength=n_rows)
    fallback_wh = np.bincount(row[~inside], weights=piece_wh[~inside], minlength=n_rows)
    return np.asarray(cost, np.float64), np.asarray(fallback_wh, np.float64)


def by_band(priced_wh: F64, column_band: I64, n_bands: int) -> F64:
    """Energy per (row, band name): the columns of one band in every tariff version added."""
    out = np.zeros((len(priced_wh), n_bands))
    np.add.at(out.T, column_band, priced_wh.T)  # out.T is a view of out
    return out
