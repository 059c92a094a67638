"""compute_machine at its edges: no data, one reading, bad arrays, job numbering."""

from __future__ import annotations

import math
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from engine_build import T0_MS, flat_tariff, machine, readings

from gateway.engine import ExplicitJob, MachineReadings, compute_machine
from gateway.errors import InputError
from gateway.ledger.rows import from_cost_row

BERLIN = ZoneInfo("Europe/Berlin")
DAY_S = 86_400


def test_no_readings_no_rows_unless_explicit_jobs_were_given() -> None:
    empty = readings([], [])
    result = compute_machine("m", empty, machine(), flat_tariff(), BERLIN)
    assert result.rows == [] and result.stats.samples == 0
    job = ExplicitJob("J", T0_MS, T0_MS + 3_600_000, "acme")
    m = machine(cost={"purchase": 3600, "life_hours": 3600, "depreciation_basis": "job_hours"})
    (row,) = compute_machine("m", empty, m, flat_tariff(), BERLIN, [job]).rows
    # no energy known yet, but the machine was booked for an hour; more data may come
    assert (row.job_id, row.energy_wh, row.open) == ("J", 0.0, True)
    tariff = flat_tariff()
    assert from_cost_row(row, tariff.band_names, tariff.rates).amounts.depreciation_cents == 100


def test_one_reading_gives_an_empty_overhead_row_for_its_day() -> None:
    result = compute_machine("m", readings([0], [500]), machine(), flat_tariff(), BERLIN)
    (row,) = result.rows
    assert (row.kind, row.day, row.energy_wh) == ("overhead", date(2026, 11, 3), 0.0)
    assert result.stats.metered_wh == 0.0


def test_nan_power_is_refused_with_its_time() -> None:
    r = readings([0, 60, 120], [100, math.nan, 100])
    with pytest.raises(InputError, match=r"machine m: watts is not a finite number at .*07:01"):
        compute_machine("m", r, machine(), flat_tariff(), BERLIN)


def test_arrays_of_different_length_are_refused() -> None:
    r = MachineReadings(np.array([T0_MS, T0_MS + 1000]), np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(InputError, match=r"differ in length \(2, 1, 2\)"):
        compute_machine("m", r, machine(), flat_tariff(), BERLIN)


def test_auto_ids_count_per_local_start_day_and_rows_come_in_time_order() -> None:
    # jobs: 08:00-08:10, 08:40-00:20 the next day (the 15-hour interval between two
    # running readings is no gap: max_gap_s is a day), 01:13-01:30 on day 2
    t = [0, 600, 1200, 1800, 2400, 57_000, 58_200, 58_800, 59_400, 62_000, 63_000, 63_600]
    w = [2000, 2000, 0, 0, 2000, 2000, 2000, 2000, 0, 2000, 2000, 0]
    m = machine(max_gap_s=DAY_S, merge_gap_s=900)
    rows = compute_machine("m", readings(t, w), m, flat_tariff(), BERLIN).rows
    assert [(r.kind, r.job_id, r.day.isoformat()) for r in rows] == [
        ("overhead", "", "2026-11-03"),
        ("job", "m-20261103-001", "2026-11-03"),
        ("job", "m-20261103-002", "2026-11-04"),  # id by start day, period by end day
        ("overhead", "", "2026-11-04"),
        ("job", "m-20261104-001", "2026-11-04"),
    ]
    assert rows == sorted(rows, key=lambda r: r.start_ms)
