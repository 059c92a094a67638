"""Times past the plausible window (a day after the gateway's clock) never reach the ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.serviceshop import (
    SITE,
    FakeSensor,
    Gateway,
    Publisher,
    config,
    job_event,
    ledger_readings,
    wait_for,
    write_config,
)
from gateway.inputs.mqtt import IN_FUTURE
from tests.servers import LOOPBACK, Mosquitto

_DAYS_2_MS = 2 * 86_400_000


def test_readings_and_job_events_dated_days_ahead_are_rejected_as_in_future(
    tmp_path: Path, broker: Mosquitto
) -> None:
    path = write_config(tmp_path, broker, sensors={"mill": "s1"})
    cfg = config(path)
    ahead = time.time_ns() // 1_000_000 + _DAYS_2_MS
    dead_letters: list[dict[str, object]] = []
    listener = paho.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: dead_letters.append(json.loads(m.payload))
    listener.connect(LOOPBACK, broker.port)
    listener.subscribe(f"shopwatt/v1/{SITE}/_deadletter", qos=1)
    listener.loop_start()
    publisher = Publisher(broker)
    wrong_clock = FakeSensor("mill", "s1", t_ms=ahead)
    sensor = FakeSensor("mill", "s1")
    sensor.boot = wrong_clock.boot + 1  # the same sensor after its clock was fixed
    try:
        with Gateway(path) as gw:
            publisher.send(
                [
                    *wrong_clock.readings([900] * 3),
                    job_event("mill", "start", "J-ahead", ahead, customer="c"),
                    *sensor.readings([900] * 5),
                ]
            )
            wait_for("the valid readings", lambda: ledger_readings(cfg).get("mill") == 5, gw)
            wait_for("four dead letters", lambda: len(dead_letters) >= 4, gw)
            assert gw.stop() == 0
    finally:
        publisher.close()
        listener.loop_stop()
        listener.disconnect()
    assert [d["reason"] for d in dead_letters] == [IN_FUTURE] * 4
    assert str(dead_letters[0]["detail"]).startswith(f"t = {ahead + 10_000} (")
    assert f"as {IN_FUTURE}" in gw.log()
    assert ledger_readings(cfg) == {"mill": 5}
