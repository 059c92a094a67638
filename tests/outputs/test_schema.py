"""The InfluxDB schema: what the dashboards query comes back right, and rewriting never doubles."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pytest

from gateway.config import Band, Machine, MachineCost, Tariff
from gateway.engine.model import CostRow, MachineReadings, Reading
from gateway.engine.states import OFF, RUNNING
from gateway.ledger.rows import LedgerRow, from_cost_row
from gateway.outputs.schema import (
    batch_power_lines,
    cost_lines,
    energy_lines,
    gateway_line,
    power_lines,
    reading_lines,
    sensor_line,
    source_lines,
    state_lines,
)
from tests.servers import Influxd

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
TARIFF = Tariff(id="t", rate=0.25, band=[Band(name="peak", rate=0.40, start="08:00", end="12:00")])
MACHINE = Machine(
    id="cnc-01",
    off_below_w=20,
    run_above_w=500,
    rated_w=4000,
    cost=MachineCost(purchase=30000, life_hours=10000),
)


def _job(job_id: str, end_ms: int, *, open: bool = False, **changes: Any) -> LedgerRow:
    """A job as the ledger keeps it (money in cents), from the engine's row plus changes."""
    return from_cost_row(
        replace(_cost_row(job_id, end_ms, open), **changes), TARIFF.band_names, TARIFF.rates
    )


def _cost_row(job_id: str, end_ms: int, open: bool) -> CostRow:
    return CostRow(
        kind="job",
        job_id=job_id,
        machine="cnc-01",
        customer='ACME, "Tools" Ltd',
        start_ms=end_ms - 5_400_000,
        end_ms=end_ms,
        day=date(2023, 11, 14),
        run_s=3600.0,
        band_wh=(1000.0, 500.0),
        depreciation_per_h=3.0,
        maintenance_per_h=0.5,
        open=open,
    )


def test_a_live_batch_of_many_sources_makes_each_sources_own_power_series() -> None:
    t = T0 + np.arange(3, dtype=np.int64) * 1000
    cnc = MachineReadings(t, np.array([100.0, np.nan, 300.0]), np.array([1.0, 1.1, np.nan]))
    grid = MachineReadings(t[:2], np.array([5000.0, 5100.0]), np.array([90.0, 91.5]))
    lines = batch_power_lines(
        "shop", {"cnc-01": cnc, "grid": grid}, {"cnc-01": "ct-1", "grid": "em-1"}, {"grid": "grid"}
    )
    assert lines == [
        *power_lines("shop", "cnc-01", "ct-1", cnc.t_ms, cnc.watts, cnc.wh),
        *power_lines("shop", "grid", "em-1", grid.t_ms, grid.watts, grid.wh, "grid"),
    ]
    assert lines[1] == f"power,machine=cnc-01,sensor=ct-1,site=shop wh=1.1 {T0 + 1000}"
    assert lines[3].startswith("site_power,role=grid,sensor=em-1,site=shop watts=5000.0,wh=90.0")


def test_power_from_arrays_and_from_live_readings_is_the_same_series(
    influxd: Influxd, influx_db: str
) -> None:
    t = T0 + np.arange(4, dtype=np.int64) * 1000
    watts = np.array([100.0, 200.0, np.nan, 400.0])
    wh = np.array([1.0, 1.05, 1.1, np.nan])
    from_arrays = power_lines("shop", "cnc-01", "ct-1", t, watts, wh)
    readings = [
        Reading(
            "cnc-01",
            "ct-1",
            int(ti),
            None if np.isnan(w) else float(w),
            None if np.isnan(e) else float(e),
        )
        for ti, w, e in zip(t, watts, wh, strict=True)
    ]
    assert reading_lines("shop", readings) == from_arrays
    assert reading_lines("shop", [Reading("cnc-01", "ct-1", T0, None, None, stale=True)]) == []
    influxd.write(from_arrays + from_arrays, influx_db)  # twice: overwrites, never doubles
    row = influxd.rows("SELECT count(watts), sum(watts), max(wh) FROM power", influx_db)[0]
    assert (row["count"], row["sum"], row["max"]) == (3, 700.0, 1.1)
    tags = influxd.rows("SHOW TAG KEYS FROM power", influx_db)
    assert [r["tagKey"] for r in tags] == ["machine", "sensor", "site"]


def test_state_timeline_has_a_point_per_change_and_per_minute(
    influxd: Influxd, influx_db: str
) -> None:
    # 1 reading every 10 s for 3 minutes: idle, running from 0:50 to 1:30, then off, and
    # one reading without power (its state is unknown: no point).
    t = T0 - T0 % 60_000 + np.arange(18, dtype=np.int64) * 10_000
    watts = np.array([100.0] * 5 + [2000.0] * 5 + [0.0] * 8)
    watts[12] = np.nan
    lines = state_lines("shop", MACHINE, t, watts)
    # changes at 0:50 and 1:40, minute starts at 0:00, 1:00 and 2:00
    assert len(lines) == 5
    assert lines[0] == f'machine_state,machine=cnc-01,site=shop code=1i,state="idle" {t[0]}'
    influxd.write(lines, influx_db)
    start = int(t[0])
    rows = influxd.rows(
        f"SELECT last(code) FROM machine_state WHERE time >= {start}ms "
        f"AND time < {start + 180_000}ms GROUP BY time(1m)",
        influx_db,
    )
    assert [r["last"] for r in rows] == [RUNNING, OFF, OFF]


def test_finished_jobs_are_points_at_their_end_with_ids_as_fields(
    influxd: Influxd, influx_db: str
) -> None:
    overhead = _job(
        "",
        T0 + 6_400_000,
        kind="overhead",
        customer="",
        start_ms=T0 - 80_000_000,
        band_wh=(200.0, 0.0),
    )
    rows = [_job("J-1", T0), _job("J-2", T0 + 7_200_000), _job("J-3", T0 + 9_000_000, open=True)]
    lines = cost_lines("shop", [*rows, overhead], TARIFF.band_names)
    assert len(lines) == 3  # the open job waits until it ends
    influxd.write(lines, influx_db)
    influxd.write(cost_lines("shop", rows, TARIFF.band_names), influx_db)  # still 2 jobs
    jobs = influxd.rows("SELECT * FROM job", influx_db)
    assert [(j["time"], j["job_id"]) for j in jobs] == [(T0, "J-1"), (T0 + 7_200_000, "J-2")]
    assert jobs[0] | {"time": 0} == {
        "time": 0,
        "site": "shop",
        "machine": "cnc-01",
        "job_id": "J-1",
        "customer": 'ACME, "Tools" Ltd',
        "energy_kwh": 1.5,
        "kwh_standard": 1.0,
        "kwh_peak": 0.5,
        "energy_cost": 0.45,
        "depreciation_cost": 3.0,
        "maintenance_cost": 0.5,
        "total_cost": 3.95,
        "run_h": 1.0,
        "duration_h": 1.5,
        "start_ms": T0 - 5_400_000,
    }
    tag_keys = {r["tagKey"] for r in influxd.rows("SHOW TAG KEYS FROM job", influx_db)}
    assert tag_keys == {"machine", "site"}
    day = influxd.rows("SELECT energy_kwh, day FROM overhead", influx_db)
    assert day == [{"time": T0 - 80_000_000, "energy_kwh": 0.2, "day": "2023-11-14"}]


def test_job_points_carry_the_figures_the_export_prints_never_a_float_artefact() -> None:
    # 1 + 1 + 7 cents added as floats is 0.09000000000000001; 10.1 + 20.2 Wh is not 30.3.
    row = _job(
        "J-9",
        T0,
        customer="ACME",
        band_wh=(10.1, 20.2),
        run_s=1000.0,  # 0.2778 h: x 0.036 = 0.0100008 -> 0.01, x 0.252 = 0.0700056 -> 0.07
        depreciation_per_h=0.036,
        maintenance_per_h=0.252,
    )
    (text,) = cost_lines("shop", [row], TARIFF.band_names)
    fields = dict(f.split("=", 1) for f in text.split(" ")[1].split(","))
    assert fields == {
        "energy_kwh": "0.03",
        "kwh_standard": "0.01",
        "kwh_peak": "0.02",
        "energy_cost": "0.01",
        "depreciation_cost": "0.01",
        "maintenance_cost": "0.07",
        "total_cost": "0.09",
        "run_h": "0.2778",
        "duration_h": "1.5",
        "job_id": '"J-9"',
        "customer": '"ACME"',
        "start_ms": f"{T0 - 5_400_000}i",
    }


def test_energy_sums_to_kwh_and_cost_per_band(influxd: Influxd, influx_db: str) -> None:
    # Three 15-minute intervals: standard only, split across the band edge, machine off.
    t0 = T0 - T0 % 900_000  # GROUP BY time(15m) buckets start at multiples of 15 min
    t = t0 + np.arange(3, dtype=np.int64) * 900_000
    band_wh = np.array([[300.0, 0.0], [100.0, 200.0], [0.0, 0.0]])
    band_cost = np.array([[0.075, 0.0], [0.025, 0.08], [0.0, 0.0]])  # the engine's figures
    lines = energy_lines("shop", "cnc-01", t, band_wh, band_cost, TARIFF)
    assert len(lines) == 4  # one per band with energy, and a zero for the idle interval
    influxd.write(lines, influx_db)
    by_band = influxd.rows("SELECT sum(kwh), sum(cost) FROM energy GROUP BY band", influx_db)
    got = {
        (r["band"], what): r[col]
        for r in by_band
        for what, col in [("kwh", "sum"), ("cost", "sum_1")]
    }
    assert got == pytest.approx(
        {
            ("standard", "kwh"): 0.4,
            ("standard", "cost"): 0.1,
            ("peak", "kwh"): 0.2,
            ("peak", "cost"): 0.08,
        }
    )
    per_interval = influxd.rows(
        f"SELECT sum(kwh) FROM energy WHERE time >= {t0}ms AND time < {t0 + 2_700_000}ms "
        "GROUP BY time(15m)",
        influx_db,
    )
    assert [r["sum"] for r in per_interval] == pytest.approx([0.3, 0.3, 0.0])


def test_health_points_carry_site_and_the_counters(influxd: Influxd, influx_db: str) -> None:
    lines = [
        gateway_line("shop", T0, {"readings_in": 10, "readings_rejected": 1, "outbox_full": False}),
        sensor_line("shop", "cnc-01", "ct-1", T0, {"rssi": -67, "last_seen_ms": T0 - 2000}),
        *source_lines("shop", T0, {"modbus:tcp:127.0.0.1:502/1": {"timeouts": 2, "polls": 40}}),
    ]
    influxd.write([text for text in lines if text], influx_db)
    assert (
        influxd.rows("SELECT readings_rejected FROM gateway", influx_db)[0]["readings_rejected"]
        == 1
    )
    src = influxd.rows("SELECT timeouts FROM source GROUP BY source", influx_db)
    assert src == [{"source": "modbus:tcp:127.0.0.1:502/1", "time": T0, "timeouts": 2}]
