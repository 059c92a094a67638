"""Cost rows: energy per band, machine-hour rates, ids and local days.

Nothing is priced here: the ledger prices the printed kWh of each priced column (tariff
version x band; ledger.units.energy_cents) and the printed hours at the machine-hour rates
(ledger.units.hour_cents, docs/accounting.md), so a line adds up as it is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import Machine
from gateway.engine.jobs import JobSpans
from gateway.engine.localtime import Calendar, local_date
from gateway.engine.model import F64, I64, CostRow


def _local_days(t_ms: I64, cal: Calendar | None, tz: ZoneInfo) -> list[date]:
    """Local date of each instant: looked up in the calendar, converted only outside it."""
    if cal is None:
        return [local_date(t, tz) for t in t_ms.tolist()]
    days = cal.days
    k = cal.day_index(t_ms).tolist()
    return [
        days[d] if 0 <= d < len(days) else local_date(t, tz)
        for d, t in zip(k, t_ms.tolist(), strict=True)
    ]


def _auto_ids(machine_id: str, start_days: list[date], numbered: Mapping[date, int]) -> list[str]:
    """Detected jobs: <machine>-<YYYYMMDD>-<NNN>, numbered per local start date from the
    number after those already numbered (001 on a day without)."""
    per_day: Counter[date] = Counter(start_days)
    ids: list[str] = []
    for day in sorted(per_day):  # start_days is sorted: the jobs are
        ymd = day.strftime("%Y%m%d")
        first = numbered.get(day, 0) + 1
        ids += (f"{machine_id}-{ymd}-{k:03d}" for k in range(first, first + per_day[day]))
    return ids


def name_jobs(
    machine_id: str,
    jobs: JobSpans,
    cal: Calendar | None,
    tz: ZoneInfo,
    numbered: Mapping[date, int] | None = None,
) -> JobSpans:
    """The detected jobs (id "") named <machine>-<YYYYMMDD>-<NNN>, counted among detected
    jobs only, so an explicit job never renumbers them. numbered: per local date, the
    detected jobs started on it before the readings (a day continued from a checkpoint)."""
    detected = np.array([not j for j in jobs.ids], dtype=bool)
    if not detected.any():
        return jobs
    days = _local_days(jobs.start_ms[detected], cal, tz)
    auto = iter(_auto_ids(machine_id, days, numbered or {}))
    ids = [j or next(auto) for j in jobs.ids]
    return JobSpans(jobs.start_ms, jobs.end_ms, jobs.open, ids, jobs.customers)


def job_rows(
    machine_id: str,
    machine: Machine,
    jobs: JobSpans,
    band_wh: F64,
    priced_wh: F64,
    spot: F64,
    run_s: F64,
    cal: Calendar | None,
    tz: ZoneInfo,
) -> list[CostRow]:
    """One row per job: energy per band and per priced column (tariff version x band), run
    time, and the machine-hour rates.

    Jobs are named (name_jobs); the row's period day is the local end date.
    """
    cost = machine.cost
    columns = zip(
        jobs.ids,
        jobs.customers,
        jobs.start_ms.tolist(),
        jobs.end_ms.tolist(),
        _local_days(jobs.end_ms, cal, tz),
        run_s.tolist(),
        band_wh.tolist(),
        priced_wh.tolist(),
        spot.tolist(),
        jobs.open,
        strict=True,
    )
    return [
        CostRow(
            kind="job",
            job_id=job_id,
            machine=machine_id,
            customer=customer,
            start_ms=start,
            end_ms=end,
            day=day,
            run_s=run,
            band_wh=tuple(wh),
            depreciation_per_h=cost.depreciation_per_hour,
            maintenance_per_h=cost.maintenance_per_run_hour,
            open=still_open,
            depreciation_basis=cost.depreciation_basis,
            priced_wh=tuple(priced),
            spot_cost=spot_cost,
            fallback_wh=fallback_wh,
        )
        for (
            job_id,
            customer,
            start,
            end,
            day,
            run,
            wh,
            priced,
            (spot_cost, fallback_wh),
            still_open,
        ) in columns
    ]


def overhead_rows(
    machine_id: str, t: I64, cal: Calendar, band_wh: F64, priced_wh: F64, spot: F64
) -> list[CostRow]:
    """One row per local day with readings (or with energy outside jobs, e.g. a long gap).

    Overhead is energy only: no run time, no depreciation, no maintenance.
    """
    readings_per_day = np.diff(np.searchsorted(t, cal.midnights))
    wanted = ((readings_per_day > 0) | (band_wh != 0.0).any(axis=1)).tolist()
    edges = cal.midnights.tolist()
    return [
        CostRow(
            kind="overhead",
            job_id="",
            machine=machine_id,
            customer="",
            start_ms=edges[d],
            end_ms=edges[d + 1],
            day=day,
            run_s=0.0,
            band_wh=tuple(wh),
            depreciation_per_h=0.0,
            maintenance_per_h=0.0,
            priced_wh=tuple(priced),
            spot_cost=spot_cost,
            fallback_wh=fallback_wh,
        )
        for d, (day, wh, priced, (spot_cost, fallback_wh)) in enumerate(
            zip(cal.days, band_wh.tolist(), priced_wh.tolist(), spot.tolist(), strict=True)
        )
        if wanted[d]
    ]
