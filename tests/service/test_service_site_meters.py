"""Site meters read live: a grid meter's CT sensor over MQTT and the solar inverter's Modbus
meter feed `shopwatt run` (mosquitto, a pymodbus server and influxd, all real). The ledger
then holds their readings, the bill's peak is the grid meter's and a job's solar_kwh is
the production meter's, exactly as a replay of the same readings gives them."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.modbus_meter import MeterServer, SimulatedMeter, SteadyLoad, Tcp
from agent.serviceshop import (
    ROOT,
    WINDOW_MS,
    FakeSensor,
    Gateway,
    config,
    ledger_readings,
    mosquitto_pub,
    wait_for,
    write_config,
)
from gateway.clock import now_ms
from gateway.engine.demand import QUARTER_MS
from gateway.engine.localtime import iso_utc, local_date, period_of
from gateway.inputs.csvfile import ReadingsCsv
from gateway.ledger import Ledger
from gateway.meters.maps import load_map, map_path
from tests.servers import LOOPBACK, Influxd, Mosquitto, free_port

SITE_METERS = """
[[site_meter]]
id = "grid"
role = "grid"
rated_w = 20000
[[site_meter.sensor]]
id = "ct-grid"

[[site_meter]]
id = "pv"
role = "production"
rated_w = 20000
[[site_meter.meter]]
id = "pv-meter"
model = "sdm120"
transport = "tcp"
host = "{host}"
port = {port}
poll_s = 0.2
"""
PV_READINGS = 20  # production readings to wait for (4 s of polling)


def _readings_csv(cfg_path: Path, ids: list[str], out: Path) -> Path:
    """What the live ledger stored, as a readings.csv for `shopwatt replay`."""
    ledger = Ledger(config(cfg_path))
    lines = ["time,machine,watts,wh"]
    for machine in ids:
        r = ledger.readings(machine, 0, 2**62)
        lines += [
            f"{iso_utc(t)},{machine},{w!r},{wh!r}"
            for t, w, wh in zip(r.t_ms.tolist(), r.watts.tolist(), r.wh.tolist(), strict=True)
        ]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_live_site_meters_give_the_bill_and_solar_a_replay_gives(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    port = free_port()
    sdm120 = load_map(map_path("sdm120", ROOT))
    inverter = SimulatedMeter(1, sdm120, SteadyLoad(sdm120, watts=9000.0, start_wh=5000.0))
    path = write_config(
        tmp_path,
        broker,
        influxd,
        influx_db,
        {"mill": "s1"},
        meters=SITE_METERS.format(host=LOOPBACK, port=port),
    )
    cfg = config(path)
    # The inverter's meter is read now (the gateway's clock), so the sensors send around
    # now too: q is the quarter hour holding it.
    q = now_ms() // QUARTER_MS * QUARTER_MS
    # Grid: 9 kW over the quarter hour q - 30 min (the month's peak, while the mill is off),
    # then 2.7 kW until q + 15 min. The mill: off, then a job from q - 10 min to q + 20 min
    # (the inverter's readings, a few seconds from now, fall inside it), then off.
    grid = FakeSensor("grid", "ct-grid", t_ms=q - 2 * QUARTER_MS - WINDOW_MS)
    grid_profile = [9000] * 91 + [2700] * 180
    mill = FakeSensor("mill", "s1", t_ms=q - QUARTER_MS - WINDOW_MS)
    mill_profile = [45] * 31 + [1800] * 180 + [45] * 30
    with MeterServer([inverter], Tcp(LOOPBACK, port)), Gateway(path) as gw:
        mosquitto_pub(broker, grid.topic, [grid.reading(w) for w in grid_profile])
        mosquitto_pub(broker, mill.topic, [mill.reading(w) for w in mill_profile])
        wait_for(
            "the readings of mill, grid and pv",
            lambda: (
                (n := ledger_readings(cfg)).get("grid") == len(grid_profile)
                and n.get("mill") == len(mill_profile)
                and n.get("pv", 0) >= PV_READINGS
            ),
            gw,
        )
        assert gw.stop() == 0
    stored = ledger_readings(cfg)
    live = Ledger(cfg)
    r = live.readings("grid", 0, 2**62)
    assert float(r.wh[-1] - r.wh[0]) == grid.truth_wh  # the sensor's energy, to the mWh

    # The same readings replayed into a ledger of its own, with the same shop.toml.
    again = tmp_path / "replay"
    again.mkdir()
    shutil.copy(path, again / "shop.toml")
    replay_cfg = config(again / "shop.toml")
    csv = _readings_csv(path, ["mill", "grid", "pv"], tmp_path / "readings.csv")
    replayed = Ledger(replay_cfg)
    replayed.replay(ReadingsCsv(csv, replay_cfg.metered, now_ms()))
    assert ledger_readings(replay_cfg) == stored

    tz = cfg.site.tz
    peak_month = period_of(local_date(q - 2 * QUARTER_MS, tz))
    job_month = period_of(local_date(q - 2 * QUARTER_MS // 3, tz))  # the job's start
    for period in {peak_month, job_month}:
        assert live.bill(period) == replayed.bill(period)
    # The peak is the grid meter's (the machines alone never pass 1.8 kW).
    bill = live.bill(peak_month)
    assert (bill.peak_start_ms, float(bill.peak_kw)) == (q - 2 * QUARTER_MS, 9.0)
    # The job got own solar from the production meter.
    solar = {k: c.solar_wh for k, c in live.bill(job_month).charges.items() if c.solar_wh}
    assert any(key[0] == "job" and key[1] == "mill" for key in solar), solar

    # InfluxDB: site meters' power apart from the machines', by role; the live peak is the
    # bill's; the grid meter's sensor in the health points.
    def count(role: str) -> int:
        q_role = f'SELECT count("watts") FROM "site_power" WHERE "role" = \'{role}\''
        rows = influxd.rows(q_role, influx_db)
        return int(rows[0]["count"]) if rows else 0

    wait_for("the site_power points", lambda: count("production") == stored["pv"])
    assert count("grid") == len(grid_profile)
    machines = influxd.rows('SELECT count("watts") FROM "power" GROUP BY "machine"', influx_db)
    assert {r["machine"] for r in machines} == {"mill"}
    newest = mill.t_ms  # the last reading of mill and grid alike
    demand = wait_for(
        "the last demand point",
        lambda: influxd.rows(f'SELECT * FROM "demand" WHERE time = {newest}ms', influx_db),
    )[0]
    now_bill = live.bill(period_of(local_date(newest, tz)))
    assert (demand["peak_start_ms"], demand["peak_kw"]) == (
        now_bill.peak_start_ms,
        float(now_bill.peak_kw),
    )
    health = influxd.rows(
        'SELECT last("readings") FROM "sensor" WHERE "sensor" = \'ct-grid\' GROUP BY "machine"',
        influx_db,
    )
    assert [(h["machine"], h["last"]) for h in health] == [("grid", len(grid_profile))]
