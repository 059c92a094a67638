"""The MQTT input against a real mosquitto: what the log says when its session is taken."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.serviceshop import wait_for, write_config
from gateway.config import load_config
from gateway.inputs.mqtt import TAKEOVER_STREAK, MqttInput
from tests.servers import Mosquitto

WARNING = (
    "closed the connection 3 times in a row within 10 s of connecting: probably another "
    "client uses the same client id 'shopwatt-gateway' (two gateways with one [mqtt] "
    "client_id?); give each gateway its own client_id"
)


def test_two_gateways_with_one_client_id_are_told_apart_in_the_log(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shopwatt.mqtt")
    cfg = load_config(write_config(tmp_path, mosquitto, sensors={"mill": "s1"}))
    first, second = MqttInput(cfg), MqttInput(cfg)  # the same [mqtt] client_id
    try:
        first.start()
        wait_for("the first gateway's connection", lambda: first.connected.is_set() or None)
        second.start()

        def warned() -> list[str] | None:
            said = [r.getMessage() for r in caplog.records if "same client id" in r.getMessage()]
            return said or None

        said = wait_for("the warning about the client id", warned)
    finally:
        first.stop()
        second.stop()
    assert said[0] == f"MQTT broker {mosquitto.host}:{mosquitto.port} {WARNING}"


def test_a_gateway_reconnecting_to_a_restarted_broker_is_not_taken_for_two(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shopwatt.mqtt")
    cfg = load_config(write_config(tmp_path, mosquitto, sensors={"mill": "s1"}))
    gateway = MqttInput(cfg)

    def refused() -> int:
        return sum("retrying" in r.getMessage() for r in caplog.records)

    try:
        gateway.start()
        for k in range(TAKEOVER_STREAK + 1):  # the broker away for a moment, again and again
            wait_for("the gateway's connection", lambda: gateway.subscribed.is_set() or None)
            mosquitto.stop()
            wait_for("a refused reconnect", lambda k=k: refused() > k or None)
            mosquitto.start()
        wait_for("the gateway's connection", lambda: gateway.subscribed.is_set() or None)
    finally:
        gateway.stop()
    assert not [r for r in caplog.records if "same client id" in r.getMessage()]
