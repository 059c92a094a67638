"""The live picture's arithmetic: energy and its cost per minute and tariff band, batch
after batch.

The outputs turn it into `machine_state` and `energy` points; a `LiveView` carries the
newest reading and the unfinished minute from one batch to the next (the ledger keeps it
with the batch), so a minute split over two batches adds up to the same energy and cost
as a minute seen whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import Machine, Tariff
from gateway.engine.energy import exact_wh, interval_energy
from gateway.engine.localtime import build_calendar, local_date
from gateway.engine.model import F64, I64, MachineReadings, PriceSlots
from gateway.engine.split import energy_before, spot_edges, spot_price, version_spots

MINUTE_MS = 60_000


def minute_energy(
    machine: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
    r: MachineReadings,
    prices: Mapping[str, PriceSlots],
) -> tuple[I64, F64, F64]:
    """Energy between consecutive readings and its cost per UTC minute and tariff band.

    Interval energies come from the engine (counters, resets, gaps as in the ledger); an
    interval that spans a minute, band or price slot edge is split pro rata, as the engine
    splits at job edges. Each piece costs its band's rate in the tariff version in force
    plus the spot part of the ledger's rule (prices: the slots of each series a
    [tariff.spot] names, as compute_machine takes them). Returns the minute starts and
    (minute, band) matrices of Wh and of cost.
    """
    n_bands = len(tariff.band_names)
    if len(r) < 2:
        return np.zeros(0, np.int64), np.zeros((0, n_bands)), np.zeros((0, n_bands))
    t = r.t_ms
    # The rows' interval energies (exact_wh), so a day's minutes add up to its rows.
    interval_wh = exact_wh(interval_energy(machine.id, r, machine).wh)
    first, last = int(t[0]), int(t[-1])
    cal = build_calendar(tariff, tz, local_date(first, tz), local_date(last, tz))
    spots = version_spots(tariff, prices)
    minutes = np.arange((first // MINUTE_MS + 1) * MINUTE_MS, last, MINUTE_MS, dtype=np.int64)
    edges = np.concatenate([cal.band_edges, spot_edges(spots)])
    edges = edges[(edges > first) & (edges < last)]
    cuts = np.unique(np.concatenate([[first], minutes, edges, [last]]))
    piece_wh = np.diff(energy_before(cuts, t, interval_wh))
    starts = cuts[:-1]
    column = cal.column_index(starts)
    version, band = cal.column_version[column], cal.column_band[column]
    spot, _ = spot_price(starts, version, spots)
    piece_cost = piece_wh / 1000.0 * (np.asarray(tariff.rate_table)[version, band] + spot)
    minute_of = starts // MINUTE_MS * MINUTE_MS
    found, row = np.unique(minute_of, return_inverse=True)
    wh = np.zeros((len(found), n_bands))
    cost = np.zeros((len(found), n_bands))
    np.add.at(wh, (row, band), piece_wh)
    np.add.at(cost, (row, band), piece_cost)
    return found, wh, cost


@dataclass(frozen=True, slots=True)
class LiveView:
    """What the live picture of one machine carries from one batch to the next."""

    last: tuple[int, float, float] | None = None  # newest reading (t_ms, watts, wh)
    minute: int = -1  # start of the newest minute with energy, which may still grow
    minute_wh: tuple[float, ...] = field(default_factory=tuple)  # its Wh per band so far
    minute_cost: tuple[float, ...] = field(default_factory=tuple)  # its cost per band so far


@dataclass(frozen=True, slots=True)
class LiveStep:
    """One batch of a machine's live picture."""

    readings: MachineReadings  # the view's newest reading (if any), then the newer ones
    fresh: int  # index of the first reading not shown before (1 after a carried one)
    minutes: I64  # minute starts with energy in this step
    band_wh: F64  # Wh per (minute, band): whole minutes so far, the carried part included
    band_cost: F64  # cost per (minute, band), as band_wh
    view: LiveView  # what the next batch carries on from


def advance(
    machine: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
    r: MachineReadings,
    view: LiveView,
    prices: Mapping[str, PriceSlots],
) -> LiveStep | None:
    """The live picture of the readings newer than view.last; None if there are none.

    r: sorted, unique times; prices: slots covering them (minute_energy). Older readings
    (late arrivals) are in the ledger but not in the live picture: the minutes they belong
    to were shown already.
    """
    fresh = 0
    if view.last is not None:
        newer = r.t_ms > view.last[0]
        if not newer.any():
            return None
        t0, w0, wh0 = view.last
        r = MachineReadings(
            np.concatenate([[t0], r.t_ms[newer]]),
            np.concatenate([[w0], r.watts[newer]]),
            np.concatenate([[wh0], r.wh[newer]]),
        )
        fresh = 1
    if len(r) == 0:
        return None
    minutes, band_wh, band_cost = minute_energy(machine, tariff, tz, r, prices)
    minute, minute_wh, minute_cost = view.minute, view.minute_wh, view.minute_cost
    if len(minutes):
        if minutes[0] == view.minute:
            band_wh[0] += view.minute_wh
            band_cost[0] += view.minute_cost
        minute = int(minutes[-1])
        minute_wh, minute_cost = tuple(band_wh[-1].tolist()), tuple(band_cost[-1].tolist())
    last = (int(r.t_ms[-1]), float(r.watts[-1]), float(r.wh[-1]))
    view = LiveView(last, minute, minute_wh, minute_cost)
    return LiveStep(r, fresh, minutes, band_wh, band_cost, view)
