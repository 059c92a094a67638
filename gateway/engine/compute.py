"""compute_machine: one machine's readings + config -> cost rows and energy stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import Machine, Tariff
from gateway.engine.calendar import Calendar, build_calendar
from gateway.engine.energy import MS_PER_H, interval_energy
from gateway.engine.jobs import JobSpans, detect_jobs, explicit_jobs
from gateway.engine.localtime import iso_utc, local_date
from gateway.engine.model import (
    F64,
    I64,
    CostRow,
    EnergyStats,
    ExplicitJob,
    MachineReadings,
    MachineResult,
)
from gateway.engine.split import split_energy
from gateway.engine.states import run_time, running_stretches
from gateway.errors import InputError


def _check_lengths(machine_id: str, readings: MachineReadings) -> None:
    """Refuse arrays that break the engine's contract (the inputs should never pass them)."""
    n = len(readings.t_ms)
    if len(readings.watts) != n or len(readings.wh) != n:
        raise InputError(
            f"machine {machine_id}: t_ms, watts and wh differ in length "
            f"({n}, {len(readings.watts)}, {len(readings.wh)})"
        )


def _check_total(machine_id: str, readings: MachineReadings, metered_wh: float) -> None:
    """NaN/inf power poisons the total: checked once there instead of per reading."""
    if not np.isfinite(metered_wh):
        bad = np.flatnonzero(~np.isfinite(readings.watts))
        where = iso_utc(int(readings.t_ms[bad[0]])) if len(bad) else "an unknown time"
        raise InputError(f"machine {machine_id}: watts is not a finite number at {where}")


def _auto_ids(machine_id: str, start_ms: I64, tz: ZoneInfo) -> list[str]:
    """Detected jobs: <machine>-<YYYYMMDD>-<NNN>, numbered from 001 per local start date."""
    per_day: Counter[str] = Counter()
    ids = []
    for start in start_ms.tolist():
        day = local_date(start, tz).strftime("%Y%m%d")
        per_day[day] += 1
        ids.append(f"{machine_id}-{day}-{per_day[day]:03d}")
    return ids


def _job_rows(
    machine_id: str,
    machine: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
    jobs: JobSpans,
    band_wh: F64,
    run_s: F64,
) -> list[CostRow]:
    """One row per job: energy per band, run time, and the three costs (unrounded)."""
    cost = machine.cost
    ids = jobs.ids if jobs.ids is not None else _auto_ids(machine_id, jobs.start_ms, tz)
    energy_cost = band_wh @ np.asarray(tariff.rates) / 1000.0
    run_h = run_s / 3600.0
    job_h = (jobs.end_ms - jobs.start_ms) / MS_PER_H
    dep_h = job_h if cost.depreciation_basis == "job_hours" else run_h
    return [
        CostRow(
            kind="job",
            job_id=ids[k],
            machine=machine_id,
            customer=jobs.customers[k],
            start_ms=int(jobs.start_ms[k]),
            end_ms=int(jobs.end_ms[k]),
            day=local_date(int(jobs.end_ms[k]), tz),
            run_s=float(run_s[k]),
            band_wh=tuple(band_wh[k].tolist()),
            energy_cost=float(energy_cost[k]),
            depreciation_cost=float(dep_h[k]) * cost.depreciation_per_hour,
            maintenance_cost=float(run_h[k]) * cost.maintenance_per_run_hour,
            open=jobs.open[k],
        )
        for k in range(len(jobs))
    ]


def _overhead_rows(
    machine_id: str, tariff: Tariff, t: I64, cal: Calendar, band_wh: F64
) -> list[CostRow]:
    """One row per local day with readings (or with energy outside jobs, e.g. a long gap)."""
    readings_per_day = np.diff(np.searchsorted(t, cal.midnights))
    energy_cost = band_wh @ np.asarray(tariff.rates) / 1000.0
    wanted = (readings_per_day > 0) | (band_wh != 0.0).any(axis=1)
    return [
        CostRow(
            kind="overhead",
            job_id="",
            machine=machine_id,
            customer="",
            start_ms=int(cal.midnights[d]),
            end_ms=int(cal.midnights[d + 1]),
            day=day,
            run_s=0.0,
            band_wh=tuple(band_wh[d].tolist()),
            energy_cost=float(energy_cost[d]),
            depreciation_cost=0.0,
            maintenance_cost=0.0,
        )
        for d, day in enumerate(cal.days)
        if wanted[d]
    ]


def compute_machine(
    machine_id: str,
    readings: MachineReadings,
    machine: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
    jobs: Sequence[ExplicitJob] | None = None,
) -> MachineResult:
    """Cost rows (jobs and daily overhead, by start time) and energy stats for one machine.

    jobs=None detects jobs from the running state; a list replaces detection with exactly
    those jobs (overlaps are an InputError). Every Wh between the first and the last
    reading lands in exactly one row.
    """
    _check_lengths(machine_id, readings)
    t = readings.t_ms
    n = len(t)
    energy = interval_energy(machine_id, readings, machine)
    stretches = running_stretches(readings.watts, machine.run_above_w, energy.long_iv)
    if jobs is not None:
        spans = explicit_jobs(machine_id, jobs, int(t[-1]) if n else None)
    else:
        spans = detect_jobs(t, stretches, machine)
    if n == 0:
        none = np.zeros((len(spans), len(tariff.band_names)))
        rows = _job_rows(machine_id, machine, tariff, tz, spans, none, np.zeros(len(spans)))
        return MachineResult(rows, EnergyStats(0, 0.0, 0, 0, 0, 0.0))

    metered_wh = float(np.sum(energy.wh))
    _check_total(machine_id, readings, metered_wh)
    run_s = run_time(t, stretches, energy.long_iv).between_s(spans.start_ms, spans.end_ms)

    cal = build_calendar(tariff, tz, local_date(int(t[0]), tz), local_date(int(t[-1]), tz))
    band_wh = split_energy(t, energy.wh, cal, spans, len(tariff.band_names))
    n_jobs = len(spans)
    rows = _job_rows(machine_id, machine, tariff, tz, spans, band_wh[:n_jobs], run_s)
    rows += _overhead_rows(machine_id, tariff, t, cal, band_wh[n_jobs:])
    rows.sort(key=lambda r: (r.start_ms, r.kind == "job", r.job_id))
    stats = EnergyStats(
        samples=n,
        metered_wh=metered_wh,
        counter_resets=energy.counter_resets,
        implausible_jumps=energy.implausible_jumps,
        gaps=energy.gaps,
        gap_s=energy.gap_s,
    )
    return MachineResult(rows, stats)
