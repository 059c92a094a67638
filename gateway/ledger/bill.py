"""The month as the utility bills it: kWh per band, energy cost, the demand peak and its
charge shared out to the jobs that made it, fixed charges and VAT (docs/tariffs.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import cast
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import ShopConfig
from gateway.engine.demand import (
    QUARTER_MS,
    LiveDemand,
    energy_between,
    peak_index,
    printed_kw,
    quarter_starts,
    share_cents,
    site_quarter_wh,
)
from gateway.engine.energy import interval_energy
from gateway.engine.localtime import (
    local_date,
    midnight_ms,
    period_dates,
    period_ms,
    period_of,
    version_index,
)
from gateway.engine.model import F64, I64, NO_SLOTS, PriceSlots
from gateway.engine.solar import covered_share
from gateway.engine.split import slot_prices, slot_weighted_wh
from gateway.ledger.chunks import ReadingStore
from gateway.ledger.rows import LedgerRow, OriginKey
from gateway.ledger.units import cents, kwh, money


@dataclass(frozen=True, slots=True)
class DemandShare:
    """Who made the peak: a job, or a machine's energy outside jobs, and its share."""

    machine: str
    job_id: str  # "" for the machine's energy outside jobs (overhead)
    customer: str
    wh: float  # energy in the peak quarter hour
    cents: int
    row: OriginKey  # the export row that carries it (overhead: the peak day's)


@dataclass(frozen=True, slots=True)
class RowCharges:
    """What a month puts on one export row beside its own costs."""

    demand_cents: int = 0
    fixed_cents: int = 0
    co2_g: int = 0  # printed kWh x the grid's g/kWh, whole grams (co2_kg has 3 decimals)
    solar_wh: int = 0  # own solar the row used, whole Wh (solar_kwh has 3 decimals)
    solar_cents: int = 0  # feed-in not earned less grid energy not bought (solar_cost)


# Per row (LedgerRow.origin_key of a job or overhead row).
Charges = dict[OriginKey, RowCharges]


@dataclass(frozen=True, slots=True)
class Bill:
    """One local month, line by line as on the paper bill; money in cents."""

    period: str
    currency: str
    band_kwh: dict[str, Decimal]  # sums of the export's printed kWh per band
    energy_cents: int  # sum of the export's energy_cost lines
    adjustment_cents: int  # of which adjustment rows (corrections of closed months)
    peak_start_ms: int | None  # the quarter hour with the highest average site power
    peak_kw: Decimal  # its average power, kW with 3 decimals
    demand_per_kw: float
    demand_cents: int
    shares: list[DemandShare]
    days: int
    fixed_day_cents: int
    fixed_month_cents: int
    vat: float
    charges: Charges  # demand, fixed charges and CO2 as the export's rows carry them
    # With [tariff.spot]: quarter hours with energy but no price slot (priced at fallback).
    fallback_quarters: int = 0
    fallback_wh: float = 0.0
    # A closed month: the peak its stored readings give now, where readings stored after
    # the close moved it (not rebilled: the bill and the export keep the close's figures).
    late_peak: tuple[int, Decimal] | None = None

    @property
    def solar_wh(self) -> int:
        """Own solar the machines used: the sum of the export's solar_kwh."""
        return sum(c.solar_wh for c in self.charges.values())

    @property
    def solar_cents(self) -> int:
        """The sum of the export's solar_cost lines."""
        return sum(c.solar_cents for c in self.charges.values())

    @property
    def net_cents(self) -> int:
        """Energy (with own solar's solar_cost), demand and fixed charges before VAT."""
        fixed = self.fixed_day_cents + self.fixed_month_cents
        return self.energy_cents + self.solar_cents + self.demand_cents + fixed

    @property
    def vat_cents(self) -> int:
        """VAT on the net amount, rounded once, half up."""
        return cents(self.net_cents / 100 * self.vat)

    @property
    def total_cents(self) -> int:
        """What the utility asks for."""
        return self.net_cents + self.vat_cents


def _interval_wh(
    cfg: ShopConfig, store: ReadingStore, machine: str, lo: int, hi: int
) -> tuple[I64, F64]:
    """Reading times and interval energies covering [lo, hi), with the reading either side
    so that the intervals across the month's edges are split there."""
    before = store.last_before(machine, lo)
    after = store.first_from(machine, hi)
    r = store.load(machine, lo if before is None else before, hi if after is None else after + 1)
    # The store keeps every UTC day it decoded: without this, the live demand (the last half
    # hour of every machine) would hold every machine's whole day at once (88 MB late in a
    # day of 50 machines at 1 Hz), while one machine's is enough.
    store.forget()
    if len(r) < 2:
        return r.t_ms, np.zeros(max(len(r) - 1, 0))
    return r.t_ms, interval_energy(machine, r, cfg.metered[machine]).wh


class MonthEnergy:
    """One local month's energy as `bill` reads it: each source's (a machine's, a site
    meter's) interval energies over the month from its stored readings, read when first
    needed and kept."""

    def __init__(self, cfg: ShopConfig, store: ReadingStore, lo: int, hi: int) -> None:
        self.cfg, self.store = cfg, store
        self.lo, self.hi = lo, hi
        self.starts = quarter_starts(lo, hi)
        self._read: dict[str, tuple[I64, F64]] = {}

    def energy(self, source: str) -> tuple[I64, F64]:
        """Reading times and interval energies over the month."""
        if source not in self._read:
            self._read[source] = _interval_wh(self.cfg, self.store, source, self.lo, self.hi)
        return self._read[source]

    def machines(self) -> dict[str, tuple[I64, F64]]:
        """Every machine's energy over the month."""
        return {m: self.energy(m) for m in self.cfg.machines}

    def quarters(self, source: str) -> F64:
        """Energy per quarter hour of the month."""
        return site_quarter_wh([self.energy(source)], self.starts)

    def near(self, source: str, start_ms: int) -> tuple[I64, F64]:
        """Interval energies covering the quarter hour from start_ms."""
        return self.energy(source)


def _site_ids(cfg: ShopConfig) -> list[str]:
    """Whose readings make the site's power: the grid site meter's when one is configured
    (it also sees what no machine meters), else every machine's, summed."""
    grid = cfg.grid_meter
    return list(cfg.machines) if grid is None else [grid.id]


def _shares(
    cfg: ShopConfig,
    energy: dict[str, tuple[I64, F64]],
    machine_wh: dict[str, float],
    jobs: Sequence[LedgerRow],
    peak: int,
    peak_day: str,
    demand_cents: int,
) -> list[DemandShare]:
    """The peak's charge by each job's energy in the peak quarter hour; the rest of each
    machine's energy there is its overhead."""
    found: list[tuple[str, str, str, float, OriginKey]] = []
    for machine in cfg.machines:
        mine = [j for j in jobs if j.machine == machine]
        t, wh = energy[machine]
        a = np.array([max(j.start_ms, peak) for j in mine], dtype=np.int64)
        b = np.array([min(j.end_ms, peak + QUARTER_MS) for j in mine], dtype=np.int64)
        job_wh = energy_between(t, wh, a, b).tolist() if len(t) > 1 and mine else [0.0] * len(mine)
        found += [
            (machine, j.job_id, j.customer, w, j.origin_key())
            for j, w in zip(mine, job_wh, strict=True)
        ]
        rest = max(machine_wh[machine] - sum(job_wh), 0.0)
        found.append((machine, "", "", rest, ("overhead", machine, "", "", "", peak_day)))
    found = [f for f in found if f[3] > 0.0]
    split = share_cents(demand_cents, np.array([f[3] for f in found])).tolist()
    return [
        DemandShare(m, j, c, w, cents_, key)
        for (m, j, c, w, key), cents_ in zip(found, split, strict=True)
    ]


def _fixed_shares(rows: Sequence[LedgerRow], fixed_cents: int) -> Charges:
    """Fixed charges to each machine's overhead, by its share of the month's kWh (as
    printed on its job and overhead lines); carried by its last overhead row of the month."""
    wh: dict[str, Decimal] = {}
    last: dict[str, OriginKey] = {}
    for r in rows:
        if r.kind == "adjustment":
            continue
        wh[r.machine] = wh.get(r.machine, Decimal(0)) + r.amounts.printed_kwh()
        if r.kind == "overhead":
            last[r.machine] = max(last.get(r.machine, r.origin_key()), r.origin_key())
    machines = [m for m in wh if m in last]
    split = share_cents(fixed_cents, np.array([float(wh[m]) for m in machines])).tolist()
    return {last[m]: RowCharges(fixed_cents=c) for m, c in zip(machines, split, strict=True) if c}


def _co2_g(
    cfg: ShopConfig,
    rows: Sequence[LedgerRow],
    energy: MonthEnergy,
    series: Mapping[str, PriceSlots],
) -> dict[OriginKey, int]:
    """Each job and overhead row's CO2, by the tariff version in force at its start, half
    up to whole grams: its printed kWh x co2_g_per_kwh, or with co2_series its energy in
    each slot x the slot's g/kWh (co2_g_per_kwh where no slot)."""
    tariff, tz = cfg.tariff, cfg.site.tz
    mine = [r for r in rows if r.kind != "adjustment"]
    at = version_index(tariff, tz, np.array([r.start_ms for r in mine], dtype=np.int64)).tolist()
    g = [Decimal(repr(v.co2_g_per_kwh)) for v in tariff.versions]
    grams = {r.origin_key(): r.amounts.printed_kwh() * g[v] for r, v in zip(mine, at, strict=True)}
    for k, version in enumerate(tariff.versions):
        if version.co2_series is None:
            continue
        slots = series.get(version.co2_series, NO_SLOTS)
        for machine, (t, wh) in energy.machines().items():
            theirs = [r for r, v in zip(mine, at, strict=True) if v == k and r.machine == machine]
            jobs = [r for r in mine if r.machine == machine and r.kind == "job"]
            weighted = _weighted_wh(t, wh, theirs, jobs, slots, version.co2_g_per_kwh)
            grams |= {key: Decimal(repr(x / 1000)) for key, x in weighted.items()}  # Wh x g/kWh
    return {key: int(x.quantize(Decimal(1), ROUND_HALF_UP)) for key, x in grams.items()}


def _weighted_wh(
    t: I64,
    wh: F64,
    rows: Sequence[LedgerRow],
    jobs: Sequence[LedgerRow],
    slots: PriceSlots,
    fallback: float,
) -> dict[OriginKey, float]:
    """One machine's rows' energy x the value of the slot holding each part of it (a
    carbon intensity, a solar share): a job its own span, an overhead row its day less the
    parts of the machine's jobs in that day."""
    a = np.array([r.start_ms for r in rows], dtype=np.int64)
    b = np.array([r.end_ms for r in rows], dtype=np.int64)
    ja = np.array([j.start_ms for j in jobs], dtype=np.int64)
    jb = np.array([j.end_ms for j in jobs], dtype=np.int64)
    # Each job's part of each row's span (empty where they do not meet).
    ca = np.maximum.outer(a, ja)
    cb = np.maximum(np.minimum.outer(b, jb), ca)
    if len(t) < 2 or not rows:
        return {r.origin_key(): 0.0 for r in rows}
    w = slot_weighted_wh(
        t, wh, np.concatenate([a, ca.ravel()]), np.concatenate([b, cb.ravel()]), slots, fallback
    )
    in_jobs = w[len(rows) :].reshape(len(rows), len(jobs)).sum(axis=1)
    overhead = np.array([r.kind == "overhead" for r in rows])
    own = np.where(overhead, w[: len(rows)] - in_jobs, w[: len(rows)])
    return {r.origin_key(): float(x) for r, x in zip(rows, own.tolist(), strict=True)}


def _solar(
    cfg: ShopConfig,
    rows: Sequence[LedgerRow],
    energy: Mapping[str, tuple[I64, F64]],
    production: tuple[I64, F64],
    starts: I64,
) -> Charges:
    """Each job and overhead row's own solar and its solar_cost (docs/tariffs.md, "Own
    solar"): per quarter hour, production covers the machines pro rata to their energy;
    the cost is the feed-in it did not earn less the share of its energy cost not bought."""
    share = covered_share(
        site_quarter_wh(energy.values(), starts), site_quarter_wh([production], starts)
    )
    slots = PriceSlots(starts, starts + QUARTER_MS, share)
    mine = [r for r in rows if r.kind != "adjustment"]
    used: dict[OriginKey, float] = {}
    for machine, (t, wh) in energy.items():
        theirs = [r for r in mine if r.machine == machine]
        jobs = [r for r in theirs if r.kind == "job"]
        used |= _weighted_wh(t, wh, theirs, jobs, slots, 0.0)
    at = version_index(
        cfg.tariff, cfg.site.tz, np.array([r.start_ms for r in mine], dtype=np.int64)
    )
    versions = cfg.tariff.versions
    found: Charges = {}
    for r, v in zip(mine, at.tolist(), strict=True):
        solar, printed = kwh(used[r.origin_key()]), r.amounts.printed_kwh()
        if not solar or not printed:
            continue  # (bands each printed 0.000 kWh while their sum rounds up: no price)
        # The grid energy it did not buy at what this line's energy cost per printed kWh.
        saved = money(r.amounts.energy_cents) * solar / printed
        forgone = solar * Decimal(repr(versions[v].feed_in_per_kwh))
        found[r.origin_key()] = RowCharges(
            solar_wh=int(solar * 1000),
            solar_cents=int(((forgone - saved) * 100).quantize(Decimal(1), ROUND_HALF_UP)),
        )
    return found


def _unpriced(
    cfg: ShopConfig, starts: I64, site: F64, series: Mapping[str, PriceSlots]
) -> tuple[int, float]:
    """Quarter hours with energy that a spot-priced version has no price slot for."""
    version = version_index(cfg.tariff, cfg.site.tz, starts)
    missing = np.zeros(len(starts), dtype=bool)
    for k, v in enumerate(cfg.tariff.versions):
        if v.spot is None:
            continue
        slots = series.get(v.spot.series, NO_SLOTS)
        missing |= (version == k) & np.isnan(slot_prices(slots, starts))
    missing &= site > 0.0
    return int(missing.sum()), float(site[missing].sum())


def month_energy(cfg: ShopConfig, store: ReadingStore, period: str) -> MonthEnergy:
    """The month's energy from its stored readings."""
    return MonthEnergy(cfg, store, *period_ms(period, cfg.site.tz))


def compute_bill(
    cfg: ShopConfig,
    energy: MonthEnergy,
    rows: Sequence[LedgerRow],
    band_names: Sequence[str],
    period: str,
    series: Mapping[str, PriceSlots],
) -> Bill:
    """The bill of `period` from its export rows, the month's energy and the price series
    a [tariff.spot] uses."""
    tz, tariff = cfg.site.tz, cfg.tariff
    first, end = period_dates(period)
    lo, starts = energy.lo, energy.starts
    site = np.zeros(len(starts))
    for source in _site_ids(cfg):
        site += energy.quarters(source)
    versions = tariff.versions
    midnights = [midnight_ms(first + timedelta(days=k), tz) for k in range((end - first).days)]
    day_versions = version_index(tariff, tz, np.array(midnights, dtype=np.int64)).tolist()
    month = versions[int(version_index(tariff, tz, np.array([lo]))[0])]

    peak_start: int | None = None
    peak_kw = Decimal("0.000")
    demand_per_kw = 0.0
    demand = 0
    shares: list[DemandShare] = []
    k = peak_index(site)
    if k >= 0:
        peak_start = int(starts[k])
        peak_kw = printed_kw(float(site[k]))
        demand_per_kw = versions[int(version_index(tariff, tz, starts[k : k + 1])[0])].demand_per_kw
        demand = cents(float(peak_kw) * demand_per_kw)
        jobs = [
            r
            for r in rows
            if r.kind == "job" and r.start_ms < peak_start + QUARTER_MS and r.end_ms > peak_start
        ]
        near = {m: energy.near(m, peak_start) for m in cfg.machines}
        peak = starts[k : k + 1]
        at_peak = {m: float(site_quarter_wh([e], peak)[0]) for m, e in near.items()}
        day = local_date(peak_start, tz).isoformat()
        shares = _shares(cfg, near, at_peak, jobs, peak_start, day, demand)

    fixed_day = cents(sum(versions[v].fixed_per_day for v in day_versions))
    fixed_month = cents(month.fixed_per_month)
    charges = _fixed_shares(rows, fixed_day + fixed_month)
    for share in shares:
        charges[share.row] = replace(charges.get(share.row, RowCharges()), demand_cents=share.cents)
    for key, grams in _co2_g(cfg, rows, energy, series).items():
        charges[key] = replace(charges.get(key, RowCharges()), co2_g=grams)
    pv = cfg.production_meter
    if pv is not None:
        found = _solar(cfg, rows, energy.machines(), energy.energy(pv.id), starts)
        for key, solar in found.items():
            charges[key] = replace(
                charges.get(key, RowCharges()),
                solar_wh=solar.solar_wh,
                solar_cents=solar.solar_cents,
            )
    fallback_quarters, fallback_wh = _unpriced(cfg, starts, site, series)
    zero = Decimal("0.000")
    band_kwh = {
        b: sum((kwh(r.amounts.band_wh.get(b, 0.0)) for r in rows), zero) for b in band_names
    }
    return Bill(
        period=period,
        currency=cfg.site.currency,
        band_kwh=band_kwh,
        energy_cents=sum(r.amounts.energy_cents for r in rows),
        adjustment_cents=sum(r.amounts.energy_cents for r in rows if r.kind == "adjustment"),
        peak_start_ms=peak_start,
        peak_kw=peak_kw,
        demand_per_kw=demand_per_kw,
        demand_cents=demand,
        shares=shares,
        days=len(midnights),
        fixed_day_cents=fixed_day,
        fixed_month_cents=fixed_month,
        vat=month.vat,
        charges=charges,
        fallback_quarters=fallback_quarters,
        fallback_wh=fallback_wh,
    )


def _month_ms(tz: ZoneInfo, t_ms: int) -> tuple[int, int]:
    """The local month holding t_ms, as [first midnight, next month's first midnight)."""
    return period_ms(period_of(local_date(t_ms, tz)), tz)


class PeakWatch:
    """The month's highest 15-minute average site power so far, kept up to date as the
    service stores readings (the live `demand` point, docs/tariffs.md).

    The first update reads the month so far; each later one re-reads only from the quarter
    hour before the previous update's, so a call costs the last half hour's readings. A
    reading arriving later than that for an older quarter hour counts at the service's next
    start (and in `bill`, which always reads the whole month).
    """

    def __init__(self, cfg: ShopConfig) -> None:
        self._cfg = cfg
        self._lo = -1
        self._starts: I64 = np.zeros(0, dtype=np.int64)
        self._site: F64 = np.zeros(0)
        self._done = 0  # the quarter hour of the previous update

    def update(self, store: ReadingStore, at_ms: int) -> LiveDemand:
        """The demand of at_ms's month up to at_ms (the site's newest reading)."""
        cfg = self._cfg
        lo, hi = _month_ms(cfg.site.tz, at_ms)
        if lo != self._lo:
            self._lo, self._done = lo, lo
            self._starts = quarter_starts(lo, hi)
            self._site = np.zeros(len(self._starts))
        redo = (self._starts >= max(self._done - QUARTER_MS, lo)) & (self._starts < at_ms)
        starts = self._starts[redo]
        window_lo = at_ms - QUARTER_MS
        first = min(int(starts[0]) if len(starts) else at_ms, window_lo)
        # One machine's readings in memory at a time (the first update reads a month); the
        # running window is one more "quarter hour", starting 15 minutes before at_ms.
        energy = (_interval_wh(cfg, store, m, first, at_ms + 1) for m in _site_ids(cfg))
        found = site_quarter_wh(energy, np.append(starts, window_lo))
        self._site[redo] = found[:-1]
        self._done = at_ms - at_ms % QUARTER_MS
        k = peak_index(self._site)
        return LiveDemand(
            at_ms,
            int(self._starts[k]) if k >= 0 else None,
            float(self._site[k]) if k >= 0 else 0.0,
            float(found[-1]),
        )


def frozen_figures(bill: Bill) -> str:
    """The month's figures that `bill` computes from readings and bill-only tariff keys
    (not from the rows), as JSON to keep with a closed month."""
    return json.dumps(
        {
            "peak_start_ms": bill.peak_start_ms,
            "peak_kw": str(bill.peak_kw),
            "demand_per_kw": bill.demand_per_kw,
            "demand_cents": bill.demand_cents,
            "shares": [
                [s.machine, s.job_id, s.customer, s.wh, s.cents, list(s.row)] for s in bill.shares
            ],
            "days": bill.days,
            "fixed_day_cents": bill.fixed_day_cents,
            "fixed_month_cents": bill.fixed_month_cents,
            "vat": bill.vat,
            "fallback_quarters": bill.fallback_quarters,
            "fallback_wh": bill.fallback_wh,
        }
    )


def frozen_bill(now: Bill, figures: str, charges: Charges) -> Bill:
    """A closed month's bill: its rows' sums from `now`, the rest as frozen at the close;
    notes the peak `now` has where late readings moved it."""
    f = json.loads(figures)
    shares = [
        DemandShare(m, j, c, wh, cents_, cast(OriginKey, tuple(row)))
        for m, j, c, wh, cents_, row in f["shares"]
    ]
    moved = (now.peak_start_ms, now.peak_kw) != (f["peak_start_ms"], Decimal(f["peak_kw"]))
    return replace(
        now,
        peak_start_ms=f["peak_start_ms"],
        peak_kw=Decimal(f["peak_kw"]),
        demand_per_kw=f["demand_per_kw"],
        demand_cents=f["demand_cents"],
        shares=shares,
        days=f["days"],
        fixed_day_cents=f["fixed_day_cents"],
        fixed_month_cents=f["fixed_month_cents"],
        vat=f["vat"],
        charges=charges,
        fallback_quarters=f["fallback_quarters"],
        fallback_wh=f["fallback_wh"],
        late_peak=(now.peak_start_ms, now.peak_kw) if moved and now.peak_start_ms else None,
    )
