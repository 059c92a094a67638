"""A simulated shop day in InfluxDB, written the way the gateway writes it.

The agent simulates the day; the gateway reads readings.csv and jobs.csv, replays them
into the ledger, turns readings and ledger rows into line protocol with its schema
builders (gateway/outputs/schema.py), puts the lines into its durable outbox and drains
them with its writer into a real influxd. Health points (gateway, sensor, Modbus source)
carry the outbox's and the writer's real counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agent.shopday import simulate_shop_day
from gateway.config import ShopConfig, load_config
from gateway.engine.calendar import build_calendar
from gateway.engine.energy import interval_energy
from gateway.engine.localtime import local_date
from gateway.engine.model import F64, I64, CostRow, MachineReadings
from gateway.inputs.csvfile import read_jobs, read_readings
from gateway.inputs.modbus import COUNTERS
from gateway.ledger.ledger import Ledger
from gateway.ledger.rows import LedgerRow
from gateway.outputs.drain import Drainer, open_influx_output
from gateway.outputs.lineprotocol import FieldValue
from gateway.outputs.outbox import Outbox
from gateway.outputs.schema import (
    cost_lines,
    energy_lines,
    gateway_line,
    power_lines,
    sensor_line,
    source_lines,
    state_lines,
)

SEED = 7
HEALTH_EVERY_MS = 15 * 60_000
MINUTE_MS = 60_000
MODBUS_SOURCE = "modbus:tcp:127.0.0.1:5020/1"  # the Modbus input's source naming


@dataclass(frozen=True)
class ShopInflux:
    """What was written, for the tests to compare the dashboards' answers with."""

    cfg: ShopConfig
    readings: dict[str, MachineReadings]
    rows: list[LedgerRow]  # the ledger's rows of the day (finished jobs and overhead)
    now_ms: int  # the last reading: "now" for the dashboards' relative time ranges

    @property
    def tz(self) -> ZoneInfo:
        """The shop's time zone (the browser's, on the shop's PC)."""
        return self.cfg.site.tz


def sensor_of(machine: str) -> str:
    """The sensor id of a machine's clip-on sensor in the simulated shop."""
    return f"{machine}-ct"


def _cost_row(row: LedgerRow, band_names: list[str]) -> CostRow:
    """A ledger row as the engine's record (money back from cents)."""
    a = row.amounts
    assert row.kind in ("job", "overhead")
    return CostRow(
        kind="job" if row.kind == "job" else "overhead",
        job_id=row.job_id,
        machine=row.machine,
        customer=row.customer,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        day=row.day,
        run_s=a.run_s,
        band_wh=tuple(a.band_wh.get(b, 0.0) for b in band_names),
        energy_cost=a.energy_cents / 100,
        depreciation_cost=a.depreciation_cents / 100,
        maintenance_cost=a.maintenance_cents / 100,
        open=row.open,
    )


def _minute_band_wh(cfg: ShopConfig, machine: str, r: MachineReadings) -> tuple[I64, F64]:
    """Energy per minute and tariff band: each interval's energy at its start's minute and band."""
    m = cfg.machines[machine]
    wh = interval_energy(machine, r, m).wh
    start = r.t_ms[:-1]
    tz = cfg.site.tz
    cal = build_calendar(
        cfg.tariff, tz, local_date(int(r.t_ms[0]), tz), local_date(int(r.t_ms[-1]), tz)
    )
    minutes, which = np.unique(start // MINUTE_MS, return_inverse=True)
    n_bands = len(cfg.tariff.band_names)
    flat = np.bincount(
        which * n_bands + cal.band_index(start), weights=wh, minlength=len(minutes) * n_bands
    )
    return minutes * MINUTE_MS, np.asarray(flat, np.float64).reshape(len(minutes), n_bands)


def _health(
    cfg: ShopConfig,
    readings: dict[str, MachineReadings],
    first: int,
    last: int,
    fields: Mapping[str, FieldValue],
) -> list[str]:
    """Health points every 15 minutes, as the gateway's health reporter would write them."""
    site = cfg.site.id
    out: list[str] = []
    polls = 0
    for t in range(first, last + 1, HEALTH_EVERY_MS):
        polls += 180
        out.append(gateway_line(site, t, fields) or "")
        for i, (machine, r) in enumerate(readings.items()):
            seen = int(r.t_ms[np.searchsorted(r.t_ms, t, side="right") - 1])
            fields_s = {"last_seen_ms": seen, "rssi": -52 - 4 * i}
            out.append(sensor_line(site, machine, sensor_of(machine), t, fields_s) or "")
        counters = dict.fromkeys(COUNTERS, 0) | {
            "polls": polls,
            "readings": polls - 3,
            "transport_errors": 3,
            "last_ok_ms": t,
        }
        out += source_lines(site, t, {MODBUS_SOURCE: counters})
    return [line for line in out if line]


def write_shop_day(folder: Path, influx_url: str, database: str) -> ShopInflux:
    """Simulate, replay and write one shop day into `database`; returns what was written."""
    shop = simulate_shop_day(SEED)
    config = folder / "shop.toml"
    text = shop.config_toml.replace('path = "shopwatt-data"', f'path = "{folder / "data"}"')
    config.write_text(
        text + f'\n[influxdb]\nurl = "{influx_url}"\ndatabase = "{database}"\n', encoding="utf-8"
    )
    cfg = load_config(config)
    shop.readings_csv(folder / "readings.csv")
    shop.jobs_csv(folder / "jobs.csv")
    readings_file = read_readings(folder / "readings.csv", cfg.machines)
    replayed = Ledger(cfg).replay(readings_file, read_jobs(folder / "jobs.csv", cfg.machines))
    selection = Ledger(cfg).select(shop.day, shop.day + timedelta(days=1))
    readings = readings_file.machines
    site, tariff = cfg.site.id, cfg.tariff

    lines: list[str] = []
    for machine, r in readings.items():
        lines += power_lines(site, machine, sensor_of(machine), r.t_ms, r.watts, r.wh)
        lines += state_lines(site, cfg.machines[machine], r.t_ms, r.watts)
        minutes, band_wh = _minute_band_wh(cfg, machine, r)
        lines += energy_lines(site, machine, minutes, band_wh, tariff)
    lines += cost_lines(site, [_cost_row(row, tariff.band_names) for row in selection.rows], tariff)

    first = min(int(r.t_ms[0]) for r in readings.values())
    now = max(int(r.t_ms[-1]) for r in readings.values())
    outbox, drainer = open_influx_output(cfg)
    try:
        outbox.put(lines)
        _drain(drainer, outbox)
        fields: dict[str, FieldValue] = {
            "readings_in": replayed.rows,
            "readings_rejected": 0,
            "readings_deduplicated": replayed.duplicates + replayed.repeated,
        }
        fields |= outbox.health().fields() | drainer.stats.fields()
        outbox.put(_health(cfg, readings, first, now, fields))
        _drain(drainer, outbox)
    finally:
        drainer.stop()
        outbox.close()
    return ShopInflux(cfg, readings, selection.rows, now)


def _drain(drainer: Drainer, outbox: Outbox) -> None:
    """Drain the outbox now, batch by batch; a write InfluxDB refuses fails the test."""
    while outbox.depth:
        if drainer.drain_once() > 0:
            raise AssertionError(f"influxd refused a write: {drainer.stats.last_error}")
