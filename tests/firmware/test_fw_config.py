# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""Sensor configuration: defaults, local overrides, and errors that name key and value."""

import json

from fw_support import config_doc

from firmware import config


def _parse(*docs: dict) -> config.Config:  # type: ignore[type-arg]
    return config.parse([(f"config{i}.json", json.dumps(d)) for i, d in enumerate(docs)], "a1b2c3")


def _error(*docs: dict) -> str:  # type: ignore[type-arg]
    try:
        _parse(*docs)
    except config.ConfigError as err:
        return str(err)
    raise AssertionError("accepted")


def test_defaults_fill_what_the_file_leaves_out() -> None:
    cfg = _parse(config_doc())
    assert cfg.sensor == "esp32-a1b2c3"
    assert cfg.window_ms == 10000 and cfg.buffer_slots == 2048 and cfg.persist_mwh == 100000
    assert cfg.channels[0]["gain"] == 1.0 and cfg.voltage is None and cfg.meter is None


def test_the_local_file_overrides_and_merges_nested_sections() -> None:
    local = {"wifi": {"password": "secret"}, "mqtt": {"user": "sensor", "password": "pw"}}
    cfg = _parse(config_doc(), local)
    assert cfg.wifi_ssid == "workshop" and cfg.wifi_password == "secret"
    assert cfg.mqtt_host == "127.0.0.1" and cfg.mqtt_user == "sensor"


def test_errors_name_the_file_key_and_value() -> None:
    msg = _error(config_doc(channels=[{"name": "spindle", "pin": 25, "amps_per_volt": 60.6}]))
    assert "config0.json" in msg and "channels[0].pin = 25" in msg and "ADC1" in msg
    msg = _error(config_doc(window_ms=500))
    assert "window_ms = 500" in msg
    msg = _error(config_doc(), {"mqtt": {"prot": 1883}})
    assert "config1.json" in msg and "mqtt.prot" in msg and "unknown key" in msg
    msg = _error(config_doc(site="my shop"))
    assert 'site = "my shop"' in msg


def test_bad_values_are_refused() -> None:
    bad = [
        config_doc(machine=""),
        config_doc(sensor="-x"),
        config_doc(channels=[]),
        config_doc(channels=[{"name": "a", "pin": 34, "amps_per_volt": 60.6}] * 4),
        config_doc(channels=[{"name": "a", "pin": 34, "amps_per_volt": 60.6, "invert": "yes"}]),
        config_doc(channels=[{"name": "a", "pin": 34}]),
        config_doc(voltage={"pin": 34, "volts_per_volt": 480}),  # same pin as the CT
        config_doc(meter={"type": "sdm630"}),
        config_doc(meter={"type": "pzem004t", "addr": 248}),
        config_doc(persist_wh=True),
        config_doc(wifi={"ssid": ""}),
    ]
    for doc in bad:
        _error(doc)


def test_a_meter_only_sensor_is_valid() -> None:
    cfg = _parse(config_doc(channels=[], meter={"type": "pzem004t"}))
    assert cfg.meter is not None and cfg.meter["addr"] == 1 and cfg.meter["baud"] == 9600


def test_not_json_is_reported_with_the_file_name() -> None:
    try:
        config.parse([("config.json", "{site: demo}")], "x")
    except config.ConfigError as err:
        assert "config.json" in str(err)
        return
    raise AssertionError("accepted")


def test_the_shipped_example_config_is_valid_with_a_local_file() -> None:
    with open("firmware/config.json") as f:
        shipped = f.read()
    with open("firmware/config.local.json.example") as f:
        local = f.read()
    cfg = config.parse([("config.json", shipped), ("config.local.json", local)], "a1b2c3")
    assert cfg.voltage is not None and len(cfg.channels) == 2
