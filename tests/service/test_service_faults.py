"""Faults: nothing lost, nothing doubled, energy exact - whatever happens to the pieces.

Each test checks the three together: the ledger holds every distinct reading once, its
metered energy equals the sensor's true energy to the mWh, and InfluxDB has one `power`
point per reading.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from agent.serviceshop import (
    FakeSensor,
    Gateway,
    Publisher,
    config,
    ledger_readings,
    wait_for,
    write_config,
)
from gateway.config import ShopConfig
from gateway.ledger import Ledger
from tests.servers import Influxd, Mosquitto, ServerPool

# 20 minutes of a machine: idle, a job, idle (120 readings).
DAY = [45] * 20 + [1800] * 60 + [45] * 40


def _energy_wh(influxd: Influxd, db: str) -> dict[str, float]:
    """SUM(kwh) of the `energy` points per machine, in Wh (docs/influxdb.md: a range's kWh)."""
    rows = influxd.rows('SELECT sum("kwh") FROM "energy" GROUP BY "machine"', db)
    return {str(r["machine"]): float(r["sum"]) * 1000 for r in rows}


def _exact(cfg: ShopConfig, sensor: FakeSensor, influxd: Influxd, db: str) -> None:
    """Every reading once in the ledger and in InfluxDB; metered energy = the truth, in the
    ledger and in the `energy` points."""
    (status,) = Ledger(cfg).status(0).machines
    assert status.readings == sensor.published
    assert status.metered_wh == pytest.approx(sensor.truth_wh, abs=1e-6)
    q = 'SELECT count("watts") FROM "power"'
    count = wait_for(
        "every power point",
        lambda: (c := influxd.rows(q, db)) and c[0]["count"] == sensor.published and c,
    )
    assert count[0]["count"] == sensor.published
    truth = {sensor.machine: sensor.truth_wh}
    wait_for("the energy points", lambda: _energy_wh(influxd, db) == pytest.approx(truth, abs=1e-6))


def test_sigkill_mid_stream_and_restart(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1"}, batch_s=0.1)
    cfg = config(path)
    sensor = FakeSensor("mill", "s1")
    chunks = [sensor.readings(DAY * 2) for _ in range(4)]  # 4 x 240 readings
    publisher = Publisher(broker)
    gw = Gateway(path).start().ready()
    try:
        for k, chunk in enumerate(chunks[:3]):
            # The sensor streams at 100 readings/s; the gateway is killed in the middle.
            sending = threading.Thread(target=publisher.send, args=(chunk, 100.0))
            sending.start()
            before = 240 * k
            wait_for("readings", lambda b=before: ledger_readings(cfg).get("mill", 0) >= b + 60, gw)
            assert ledger_readings(cfg)["mill"] < before + 240  # mid-stream
            gw.kill()
            sending.join()
            gw.start().ready()
        publisher.send(chunks[3])
        wait_for("every reading", lambda: ledger_readings(cfg).get("mill") == 960, gw)
        assert gw.stop() == 0
    finally:
        gw.__exit__()
        publisher.close()
    _exact(cfg, sensor, influxd, influx_db)


@pytest.mark.parametrize("point", ["taken", "queued", "committed", "acked"])
def test_energy_points_add_up_to_the_ledger_after_a_sigkill_anywhere_in_a_batch(
    point: str, tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    # docs/influxdb.md: SUM(kwh) of `energy` over a range is the kWh of that range. The
    # gateway kills itself at a named point of a batch after 150 of 240 readings.
    path = write_config(
        tmp_path, broker, influxd, influx_db, {"mill": "s1", "lathe": "s2"}, batch_s=0.1
    )
    cfg = config(path)
    sensors = [FakeSensor("mill", "s1"), FakeSensor("lathe", "s2")]

    def stream() -> list[tuple[str, bytes]]:
        return [m for pair in zip(*(s.readings(DAY) for s in sensors), strict=True) for m in pair]

    publisher = Publisher(broker)
    gw = Gateway(path)
    try:
        gw.start(crash_at=f"{point}:150").ready()
        publisher.send(stream(), 100.0)
        assert gw.exited() == -signal.SIGKILL
        gw.start().ready()
        publisher.send(stream())
        wait_for("every reading", lambda: ledger_readings(cfg) == {"mill": 240, "lathe": 240}, gw)
        assert gw.stop() == 0
    finally:
        gw.__exit__()
        publisher.close()
    metered = {m.machine: m.metered_wh for m in Ledger(cfg).status(0).machines}
    assert metered == pytest.approx({s.machine: s.truth_wh for s in sensors}, abs=1e-6)
    wait_for(
        "the energy points",
        lambda: _energy_wh(influxd, influx_db) == pytest.approx(metered, abs=1e-6),
    )


def test_influxdb_down_for_a_while(tmp_path: Path, broker: Mosquitto, servers: ServerPool) -> None:
    influxd = servers.influxd()
    db = influxd.create_database("shop")
    path = write_config(tmp_path, broker, influxd, db, {"mill": "s1"})
    cfg = config(path)
    sensor = FakeSensor("mill", "s1")
    publisher = Publisher(broker)
    with Gateway(path) as gw:
        publisher.send(sensor.readings(DAY[:40]))
        wait_for("the first readings", lambda: ledger_readings(cfg).get("mill") == 40, gw)
        influxd.stop()
        publisher.send(sensor.readings(DAY[40:]))
        # The ledger goes on without InfluxDB; the points wait in the outbox.
        wait_for("the rest in the ledger", lambda: ledger_readings(cfg).get("mill") == len(DAY), gw)
        influxd.start()
        q = 'SELECT count("watts") FROM "power"'
        wait_for("the points", lambda: (c := influxd.rows(q, db)) and c[0]["count"] == len(DAY), gw)
        assert gw.stop() == 0
    publisher.close()
    _exact(cfg, sensor, influxd, db)


def test_broker_restarts_with_the_gateway_running_and_with_it_away(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1"})
    cfg = config(path)
    sensor = FakeSensor("mill", "s1")

    def publish(watts: list[int]) -> None:
        publisher = Publisher(broker)
        publisher.send(sensor.readings(watts))
        publisher.close()

    gw = Gateway(path).start().ready()
    try:
        publish(DAY[:40])
        wait_for("the first readings", lambda: ledger_readings(cfg).get("mill") == 40, gw)
        broker.restart()  # the gateway reconnects and resumes its session
        publish(DAY[40:80])
        wait_for("readings after the restart", lambda: ledger_readings(cfg).get("mill") == 80, gw)
        gw.kill()
        publish(DAY[80:])  # queued by the broker for the gateway's session ...
        broker.restart()  # ... and kept on disk across a restart of the broker
        gw.start().ready()
        wait_for("the queued readings", lambda: ledger_readings(cfg).get("mill") == len(DAY), gw)
        assert gw.stop() == 0
    finally:
        gw.__exit__()
    _exact(cfg, sensor, influxd, influx_db)
