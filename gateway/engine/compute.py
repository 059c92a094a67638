"""compute_machine: one machine's readings + config -> cost rows and energy stats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import Machine, Tariff
from gateway.engine.energy import IntervalEnergy, exact_wh, interval_energy
from gateway.engine.jobs import Held, combine, detect_jobs, explicit_jobs, inside, split_jobs
from gateway.engine.localtime import build_calendar, iso_utc, local_date
from gateway.engine.model import (
    I64,
    EnergyStats,
    ExplicitJob,
    MachineReadings,
    MachineResult,
    PriceSlots,
)
from gateway.engine.rows import job_rows, name_jobs, overhead_rows
from gateway.engine.split import by_band, split_energy, spot_split, version_spots
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


def compute_machine(
    machine_id: str,
    readings: MachineReadings,
    machine: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
    jobs: Sequence[ExplicitJob] | None = None,
    prices: Mapping[str, PriceSlots] | None = None,
    detect: bool = True,
    cuts: I64 | None = None,
    held: Held | None = None,
    numbered: Mapping[date, int] | None = None,
) -> MachineResult:
    """Cost rows (jobs and daily overhead, by start time) and energy stats for one machine.

    Explicit jobs (overlaps are an InputError) take their spans; with `detect`, jobs are
    detected from the running state on the rest of the time, never across an explicit
    job. `cuts` (sorted): instants where the job around them becomes two (split_jobs).
    Every Wh between the first and the last reading lands in exactly one row. prices: the
    slots of each series a [tariff.spot] names (a series not given has no slots: its
    energy is priced at the fallback). held, numbered: the readings continue a day from a
    checkpoint (the detected job running through it; jobs numbered per day before it).
    """
    _check_lengths(machine_id, readings)
    t = readings.t_ms
    n = len(t)
    # Explicit jobs are checked first: a bad jobs.csv fails before any work is done.
    given = explicit_jobs(machine_id, jobs or [], int(t[-1]) if n else None)
    energy = interval_energy(machine_id, readings, machine)
    stretches = running_stretches(readings.watts, machine.run_above_w, energy.long_iv)
    spans = given
    if detect and n and len(given):
        # Detection sees no running reading inside an explicit job: the job has that time.
        within, region = inside(t, given)
        free = np.where(within, -np.inf, readings.watts)
        # Two running readings with an explicit job between them (even one that holds no
        # reading) are never one stretch: cut there as at a long gap.
        apart = np.union1d(energy.long_iv, np.flatnonzero(np.diff(region)))
        free_stretches = running_stretches(free, machine.run_above_w, apart)
        spans = combine(given, detect_jobs(t, free_stretches, machine, region, held))
    elif detect and n:
        spans = detect_jobs(t, stretches, machine, held=held)
    cal = None
    if n:
        cal = build_calendar(tariff, tz, local_date(int(t[0]), tz), local_date(int(t[-1]), tz))
    spans = name_jobs(machine_id, spans, cal, tz, numbered)
    if cuts is not None:
        spans = split_jobs(spans, cuts)
    if cal is None:
        n_jobs = len(spans)
        none = np.zeros((n_jobs, len(tariff.band_names)))
        priced_none = np.zeros((n_jobs, len(tariff.columns)))
        spot_none = np.zeros((n_jobs, 2))
        rows = job_rows(
            machine_id, machine, spans, none, priced_none, spot_none, np.zeros(n_jobs), None, tz
        )
        return MachineResult(rows, EnergyStats(0, 0.0, 0, 0, 0, 0.0))

    interval_wh = exact_wh(energy.wh)  # so that rows computed in pieces add up exactly
    metered_wh = float(np.sum(interval_wh))
    _check_total(machine_id, readings, metered_wh)
    run_s = run_time(t, stretches, energy.long_iv).between_s(spans.start_ms, spans.end_ms)

    priced_wh = split_energy(t, interval_wh, cal, spans, len(tariff.columns))
    n_jobs = len(spans)
    band_wh = by_band(priced_wh, cal.column_band, len(tariff.band_names))
    spot = np.zeros((len(priced_wh), 2))
    if any(v.spot for v in tariff.versions):
        spots = version_spots(tariff, prices or {})
        spot = np.column_stack(spot_split(t, interval_wh, cal, spans, spots))
    rows = job_rows(
        machine_id,
        machine,
        spans,
        band_wh[:n_jobs],
        priced_wh[:n_jobs],
        spot[:n_jobs],
        run_s,
        cal,
        tz,
    )
    rows += overhead_rows(machine_id, t, cal, band_wh[n_jobs:], priced_wh[n_jobs:], spot[n_jobs:])
    rows.sort(key=lambda r: (r.start_ms, r.kind == "job", r.job_id))
    return MachineResult(rows, _stats(n, metered_wh, energy), interval_wh)


def energy_stats(machine_id: str, readings: MachineReadings, machine: Machine) -> EnergyStats:
    """compute_machine's stats alone: the energy step, without detecting or costing jobs."""
    _check_lengths(machine_id, readings)
    energy = interval_energy(machine_id, readings, machine)
    if not len(readings.t_ms):
        return EnergyStats(0, 0.0, 0, 0, 0, 0.0)
    metered_wh = float(np.sum(exact_wh(energy.wh)))
    _check_total(machine_id, readings, metered_wh)
    return _stats(len(readings.t_ms), metered_wh, energy)


def _stats(n: int, metered_wh: float, energy: IntervalEnergy) -> EnergyStats:
    return EnergyStats(
        samples=n,
        metered_wh=metered_wh,
        counter_resets=energy.counter_resets,
        implausible_jumps=energy.implausible_jumps,
        gaps=energy.gaps,
        gap_s=energy.gap_s,
    )
