"""The running gateway with an EM24 near its rated power: every 0.1 kWh step is counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.modbus_meter import MeterServer, SimulatedMeter, SteadyLoad, Tcp
from agent.serviceshop import (
    MACHINE,
    ROOT,
    Gateway,
    config,
    ledger_readings,
    wait_for,
    write_config,
)
from gateway.ledger import Ledger
from gateway.meters.maps import load_map, map_path
from tests.servers import LOOPBACK, Influxd, free_port

POLL_S = 0.5
# A third of a 100 Wh step per poll (flat, flat, step), 90 % of rated_w.
WATTS = 100.0 / 3 * 3600 / POLL_S


def test_an_em24_near_rated_power_loses_no_energy_to_its_coarse_counter(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    port = free_port()
    em24 = load_map(map_path("em24", ROOT))
    meter = SimulatedMeter(1, em24, SteadyLoad(em24, watts=WATTS, start_wh=1_234_500.0))
    source = (
        f'[[machine.meter]]\nid = "em24-1"\nmodel = "em24"\ntransport = "tcp"\n'
        f'host = "{LOOPBACK}"\nport = {port}\ndevice_id = 1\npoll_s = {POLL_S}\n'
    )
    machine = MACHINE.format(id="press", source=source)
    machine = machine.replace("rated_w = 5000", f"rated_w = {WATTS / 0.9:.0f}")
    path = write_config(tmp_path, None, influxd, influx_db, meters=machine)
    cfg = config(path)
    with MeterServer([meter], Tcp(LOOPBACK, port)), Gateway(path, mqtt=False) as gw:
        wait_for("15 polls of the EM24", lambda: ledger_readings(cfg).get("press", 0) >= 15, gw)
        assert gw.stop() == 0
    (status,) = Ledger(cfg).status(0).machines
    (counter,) = influxd.rows('SELECT first("wh"), last("wh") FROM "power"', influx_db)
    # Before: each step was an implausible jump worth 1.5 polls of power, the flat polls 0.
    assert status.counters["implausible_jumps"] == 0
    assert status.metered_wh == pytest.approx(counter["last"] - counter["first"])
    assert status.metered_wh >= 300.0  # the counter moved several steps
    today = datetime.now(UTC).date()
    rows = Ledger(cfg).select(today - timedelta(days=1), today + timedelta(days=2)).rows
    assert sum(r.amounts.energy_wh for r in rows) == pytest.approx(status.metered_wh)
