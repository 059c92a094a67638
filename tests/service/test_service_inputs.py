"""Inputs under stress: a buffered hour replayed, a dead Modbus meter, junk on every topic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from agent.modbus_meter import SILENT, MeterServer, SimulatedMeter, SteadyLoad, Tcp
from agent.serviceshop import (
    BROKER_CONFIG,
    MACHINE,
    ROOT,
    SITE,
    T0,
    FakeSensor,
    Gateway,
    Publisher,
    config,
    ledger_readings,
    wait_for,
    write_config,
)
from gateway.ledger import Ledger
from gateway.meters.maps import load_map, map_path
from tests.servers import LOOPBACK, Influxd, Mosquitto, ServerPool, free_port


def _sensor_point(influxd: Influxd, db: str, field: str) -> int:
    rows = influxd.rows(f'SELECT last("{field}") FROM "sensor"', db)
    return int(rows[0]["last"]) if rows else -1


def test_a_sensor_replays_a_buffered_hour_with_a_power_cut_in_it(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1"})
    cfg = config(path)
    sensor = FakeSensor("mill", "s1")
    publisher = Publisher(broker)
    with Gateway(path) as gw:
        before = sensor.readings([45] * 10 + [1800] * 20)
        publisher.send(before)
        wait_for(
            "the readings before the outage", lambda: ledger_readings(cfg).get("mill") == 30, gw
        )
        # Wi-Fi gone for an hour: 360 windows go to the offline buffer. Halfway, the power
        # fails; the sensor comes back with its counter 20 Wh behind and no clock for 50 s.
        buffered = sensor.readings([1800] * 150 + [45] * 30)
        sensor.power_cut(lag_mwh=20_000)
        sensor.synced = False
        buffered += sensor.readings([45] * 5)
        sensor.synced = True
        buffered += sensor.readings([45] * 20 + [1800] * 155)
        # Back online: the last 5 readings it had sent are sent again (it never saw their
        # acknowledgement), then the hour, in order, then live readings.
        publisher.send(before[-5:] + buffered + sensor.readings([1800] * 20))
        total = 30 + 360 + 20
        wait_for("the replayed hour", lambda: ledger_readings(cfg).get("mill") == total, gw)
        assert gw.stop() == 0
    publisher.close()
    (status,) = Ledger(cfg).status(0).machines
    assert (status.readings, sensor.published) == (total, total)
    assert status.metered_wh == pytest.approx(sensor.truth_wh, abs=1e-6)
    assert _sensor_point(influxd, influx_db, "duplicates") == 5
    assert _sensor_point(influxd, influx_db, "boots") == 1
    assert _sensor_point(influxd, influx_db, "unsynced") == 0  # placed by the boot's clock
    count = influxd.rows('SELECT count("watts") FROM "power"', influx_db)
    assert count[0]["count"] == total


def test_a_dead_meter_on_the_bus_does_not_stop_the_other(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    port = free_port()
    sdm120 = load_map(map_path("sdm120", ROOT))
    good = SimulatedMeter(1, sdm120, SteadyLoad(sdm120, watts=1800.0, start_wh=5000.0))
    dead = SimulatedMeter(2, sdm120, SteadyLoad(sdm120, watts=900.0), fault=SILENT)

    def meter(device_id: int) -> str:
        return (
            f'[[machine.meter]]\nid = "sdm-{device_id}"\nmodel = "sdm120"\ntransport = "tcp"\n'
            f'host = "{LOOPBACK}"\nport = {port}\ndevice_id = {device_id}\npoll_s = 0.1\n'
            "timeout_s = 0.2\nretries = 0\nbackoff_max_s = 0.5\n"
        )

    meters = MACHINE.format(id="saw", source=meter(1)) + MACHINE.format(id="press", source=meter(2))
    path = write_config(tmp_path, None, influxd, influx_db, meters=meters)
    cfg = config(path)
    with MeterServer([good, dead], Tcp(LOOPBACK, port)), Gateway(path, mqtt=False) as gw:
        wait_for("30 polls of the good meter", lambda: ledger_readings(cfg).get("saw", 0) >= 30, gw)
        assert gw.stop() == 0
    status = {m.machine: m for m in Ledger(cfg).status(0).machines}
    assert "press" not in status  # nothing usable from the dead meter, nothing invented
    q = 'SELECT count("wh"), first("wh"), last("wh") FROM "power" WHERE "machine" = \'saw\''
    (saw,) = influxd.rows(q, influx_db)
    assert saw["count"] == status["saw"].readings
    # The ledger's energy is the meter's own counter difference (SDM120: float32 kWh).
    assert status["saw"].metered_wh == pytest.approx(saw["last"] - saw["first"], abs=1e-6)
    errors = influxd.rows(
        'SELECT last("transport_errors") FROM "source" GROUP BY "source"', influx_db
    )
    by_source = {e["source"]: e["last"] for e in errors}
    assert by_source[f"modbus:tcp:{LOOPBACK}:{port}/2"] > 0
    assert by_source[f"modbus:tcp:{LOOPBACK}:{port}/1"] == 0


# -- junk on every topic, at the running service ------------------------------------------

VALID = (ROOT / "tests/vectors/reading/valid/three_channels.json").read_bytes()
# Junk goes to the lathe's sensor s2 (and to ids the shop does not have); the mill's s1
# sends the valid readings the test waits for. (A valid mutant on s1 could start a new boot
# and turn the test's readings into an old boot's.)
_topics = st.sampled_from(
    [
        f"shopwatt/v1/{SITE}/lathe/s2/reading",
        f"shopwatt/v1/{SITE}/lathe/s2/status",
        f"shopwatt/v1/{SITE}/lathe/job",
        f"shopwatt/v1/{SITE}/lathe/nobody/reading",  # a sensor shop.toml does not list
        f"shopwatt/v1/{SITE}/lathe/s1/reading",  # s1 under the wrong machine
        f"shopwatt/v1/{SITE}/-lathe/s2/reading",  # an id breaking the id rule
    ]
)
_junk = st.one_of(
    st.binary(max_size=40),
    st.integers(1025, 1100).map(lambda n: b"{" * n),  # beyond every size limit
    st.builds(
        lambda k, v: json.dumps({**json.loads(VALID), k: v}).encode(),
        st.sampled_from(["v", "b", "s", "t", "ch", "w", "zz"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    ),
)


@pytest.fixture(scope="module")
def junk_shop(
    tmp_path_factory: pytest.TempPathFactory, influxd: Influxd
) -> Iterator[tuple[Mosquitto, Path, str]]:
    pool = ServerPool()
    broker = pool.mosquitto(BROKER_CONFIG)
    db = influxd.create_database("junk")
    folder = tmp_path_factory.mktemp("junk")
    sensors = {"mill": "s1", "lathe": "s2"}
    yield broker, write_config(folder, broker, influxd, db, sensors), db
    pool.close()
    influxd.drop_database(db)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(messages=st.lists(st.tuples(_topics, _junk), min_size=500, max_size=500))
def test_junk_never_stops_the_service_and_every_message_is_counted(
    junk_shop: tuple[Mosquitto, Path, str], influxd: Influxd, messages: list[tuple[str, bytes]]
) -> None:
    broker, path, db = junk_shop
    cfg = config(path)
    stored_before = ledger_readings(cfg).get("mill", 0)
    sensor = FakeSensor("mill", "s1", t_ms=T0 + stored_before * 10_000)
    dead_letters: list[bytes] = []
    listener = paho.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: dead_letters.append(m.payload)
    listener.connect(LOOPBACK, broker.port)
    listener.subscribe(f"shopwatt/v1/{SITE}/_deadletter", qos=1)
    listener.loop_start()
    publisher = Publisher(broker)
    sensor.seq, sensor.boot = stored_before, 1
    with Gateway(path) as gw:
        publisher.send(messages + sensor.readings([900] * 10))
        wait_for(
            "the valid readings",
            lambda: ledger_readings(cfg).get("mill") == stored_before + 10,
            gw,
        )
        assert gw.stop() == 0  # still running after all that, and stops cleanly
    publisher.close()
    listener.loop_stop()
    rows = influxd.rows('SELECT * FROM "source" WHERE "source" = \'mqtt\'', db)
    c = {k: v or 0 for k, v in rows[-1].items()}  # the point written at the clean stop
    assert c["received"] == len(messages) + 10
    assert c["accepted"] + c["rejected"] + c["ignored"] + c["internal_errors"] == c["received"]
    assert c["internal_errors"] == 0
    assert c["deadletters"] + c["deadletters_skipped"] == c["rejected"]
    assert len(dead_letters) <= c["deadletters"]
