"""`shopwatt run` writes the month's peak so far and warns when the running 15-minute
average approaches it: mosquitto_pub -> broker -> gateway -> influxd, all real."""

from __future__ import annotations

from pathlib import Path

from agent.serviceshop import (
    FakeSensor,
    Gateway,
    config,
    ledger_readings,
    mosquitto_pub,
    wait_for,
    write_config,
)
from gateway.engine.demand import QUARTER_MS
from gateway.ledger import Ledger
from tests.servers import Influxd, Mosquitto

# A reading every 10 s from 09:00:10 local: 100 at 45 W, then 40 at 1800 W (until 09:23:20);
# each carries its 10 s window's energy.
PROFILE = [45] * 100 + [1800] * 40


def test_the_peak_so_far_and_a_warning_reach_influxdb(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1"})
    cfg = config(path)
    mill = FakeSensor("mill", "s1")
    t0 = mill.t_ms
    with Gateway(path) as gw:
        mosquitto_pub(broker, mill.topic, [mill.reading(w) for w in PROFILE])
        wait_for("the readings", lambda: ledger_readings(cfg).get("mill") == len(PROFILE), gw)
        assert gw.stop() == 0  # a clean stop writes the last demand point

    last = t0 + len(PROFILE) * 10_000  # the sensor's clock runs ahead of each reading

    def newest(measurement: str) -> dict[str, object] | None:
        rows = influxd.rows(f'SELECT * FROM "{measurement}" ORDER BY time DESC LIMIT 1', influx_db)
        return rows[0] if rows and rows[0]["time"] == last else None

    demand = wait_for("the last demand point", lambda: newest("demand"))
    # 09:15-09:30: 10 windows at 45 W and 40 at 1800 W = 201.25 Wh in 15 minutes = 0.805 kW.
    # The 15 minutes up to 09:23:20: 50 windows at 45 W, 40 at 1800 W = 206.25 Wh = 0.825 kW.
    assert (demand["peak_kw"], demand["running_kw"]) == (0.805, 0.825)
    assert demand["peak_start_ms"] == t0 + QUARTER_MS
    bill = Ledger(cfg).bill("2026-11")
    assert (bill.peak_start_ms, float(bill.peak_kw)) == (demand["peak_start_ms"], 0.805)
    # 0.825 kW is above 90 % of 0.805 kW ([influxdb] demand_warning's default): 206.25 /
    # 201.25 = 1.025 of the peak.
    warning = wait_for("the warning point", lambda: newest("demand_warning"))
    assert (warning["running_kw"], warning["peak_kw"], warning["share"]) == (0.825, 0.805, 1.025)
