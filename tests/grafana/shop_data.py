"""A simulated shop day in InfluxDB, written by the gateway's own code.

The agent simulates the day (readings.csv, jobs.csv); `replay_files` does what
`shopwatt replay` does: replay into the ledger, then queue the readings (power, states,
per-minute energy) and the ledger's job and overhead rows for InfluxDB through the
outbox and send them with the writer (gateway/outputs/publish.py). The demo plan's
customers and members are added first; the members' balances are written at the end.
The health points (`gateway`, `sensor`, `source`) carry the real outbox and writer counters and the
service's own `sensor` fields; they are written every 15 minutes of the day, as the
running service would have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agent.demo import add_customers, add_members
from agent.shopday import simulate_shop_day
from gateway.cli import replay_files
from gateway.config import ShopConfig, load_config
from gateway.engine.model import MachineReadings
from gateway.inputs.modbus import COUNTERS
from gateway.inputs.protocol import StatusReport
from gateway.inputs.tracker import DUPLICATE, READING
from gateway.ledger import Ledger
from gateway.ledger.bill import PeakWatch
from gateway.ledger.membership import MemberLedger
from gateway.ledger.rows import LedgerRow
from gateway.outputs.drain import Drainer, open_influx_output
from gateway.outputs.lineprotocol import FieldValue
from gateway.outputs.outbox import Outbox
from gateway.outputs.publish import member_points
from gateway.outputs.schema import demand_lines, gateway_line, sensor_line, source_lines
from gateway.service import Health
from tests.ledger.shop import stored_readings

SEED = 7
HEALTH_EVERY_MS = 15 * 60_000
DEMAND_WARNING = 0.9  # [influxdb] demand_warning's default
MODBUS_SOURCE = "modbus:tcp:127.0.0.1:5020/1"  # the Modbus input's source naming


@dataclass(frozen=True)
class ShopInflux:
    """What was written, for the tests to compare the dashboards' answers with."""

    cfg: ShopConfig
    readings: dict[str, MachineReadings]
    rows: list[LedgerRow]  # the ledger's rows of the day (jobs and overhead)
    now_ms: int  # the last reading: "now" for the dashboards' relative time ranges

    @property
    def tz(self) -> ZoneInfo:
        """The shop's time zone (the browser's, on the shop's PC)."""
        return self.cfg.site.tz


def sensor_of(machine: str) -> str:
    """The sensor id of a machine's clip-on sensor in the simulated shop."""
    return f"{machine}-ct"


def _health_lines(
    cfg: ShopConfig, readings: dict[str, MachineReadings], t_ms: int, gateway: dict[str, FieldValue]
) -> list[str]:
    """One round of the service's health points (Service.write_health) at t_ms."""
    site, health = cfg.site.id, Health()
    lines = [gateway_line(site, t_ms, gateway)]
    for i, (machine, r) in enumerate(readings.items()):
        sensor = sensor_of(machine)
        heard = r.t_ms[r.t_ms <= t_ms]
        health.last_seen_ms[sensor] = int(heard[-1])
        health.status[sensor] = (
            int(r.t_ms[0]),
            StatusReport("online", 3, "0.1.0", -52 - 4 * i, int(r.t_ms[0]), 0, 0, 0),
        )
        counts = Counter({READING: len(heard), DUPLICATE: i})
        lines.append(sensor_line(site, machine, sensor, t_ms, health.sensor_fields(sensor, counts)))
    polls = (t_ms - min(int(r.t_ms[0]) for r in readings.values())) // 5000
    meter = dict.fromkeys(COUNTERS, 0) | {
        "polls": polls,
        "readings": polls - 3,
        "transport_errors": 3,
        "last_ok_ms": t_ms,
    }
    return [text for text in lines if text] + source_lines(site, t_ms, {MODBUS_SOURCE: meter})


def _drain(drainer: Drainer, outbox: Outbox) -> None:
    """Send everything in the outbox now; a write InfluxDB refuses fails the test."""
    while outbox.depth:
        if drainer.drain_once() > 0:
            raise AssertionError(f"influxd refused a write: {drainer.stats.last_error}")
    drainer.flush()


def write_shop_day(folder: Path, influx_url: str, database: str) -> ShopInflux:
    """Simulate, replay and write one shop day into `database`; returns what was written."""
    shop = simulate_shop_day(SEED)
    config = folder / "shop.toml"
    text = shop.config_toml.replace('path = "shopwatt-data"', f'path = "{folder / "data"}"')
    text += f'\n[influxdb]\nurl = "{influx_url}"\ndatabase = "{database}"\n'
    config.write_text(text, encoding="utf-8")
    cfg = load_config(config)
    shop.readings_csv(folder / "readings.csv")
    shop.jobs_csv(folder / "jobs.csv")
    members = MemberLedger(cfg)
    add_customers(members)
    add_members(members, shop.day)
    replayed = replay_files(cfg, folder / "readings.csv", folder / "jobs.csv")
    rows = Ledger(cfg).select(shop.day, shop.day + timedelta(days=1)).rows
    readings = stored_readings(cfg)
    first = min(int(r.t_ms[0]) for r in readings.values())
    now = max(int(r.t_ms[-1]) for r in readings.values())

    outbox, drainer = open_influx_output(cfg)
    try:
        _drain(drainer, outbox)  # whatever the replay's send budget left behind
        gateway: dict[str, FieldValue] = {
            "readings_in": replayed.rows,
            "readings_rejected": 0,
            "readings_deduplicated": replayed.duplicates + replayed.repeated,
        }
        gateway |= outbox.health().fields() | drainer.stats.fields()
        ledger, watch = Ledger(cfg), PeakWatch(cfg)
        for t in np.arange(first, now + 1, HEALTH_EVERY_MS).tolist():
            outbox.put(_health_lines(cfg, readings, t, gateway))
            outbox.put(demand_lines(cfg.site.id, ledger.demand(watch, t), DEMAND_WARNING))
        outbox.put(member_points(cfg, now))  # the members' balances at the end of the day
        _drain(drainer, outbox)
    finally:
        drainer.stop()
        outbox.close()
    return ShopInflux(cfg, readings, rows, now)
