"""[[machine.meter]] validation: every mistake names shop.toml, the meter's key and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import SiteMeter
from gateway.errors import ConfigError
from gateway.inputs.modbus import ModbusInput
from tests.modbus.modbus_helpers import shop_with_meters

TCP = {"id": "pm1", "model": "sdm630", "transport": "tcp", "host": "10.0.0.5"}
RTU = {"id": "pz1", "model": "pzem004t", "transport": "rtu", "port": "/dev/ttyUSB0"}


@pytest.mark.parametrize(
    ("meter", "expected"),
    [
        ({**TCP, "model": "sdm63"}, ".model = 'sdm63': unknown meter model; shipped: em24,"),
        ({k: v for k, v in TCP.items() if k != "host"}, "transport 'tcp' needs host"),
        ({**TCP, "port": "/dev/ttyUSB0"}, "tcp port must be 1-65535, not '/dev/ttyUSB0'"),
        ({**TCP, "baudrate": 9600}, "baudrate: rtu settings, this meter is tcp"),
        ({**RTU, "port": 502}, "transport 'rtu' needs port = the serial device"),
        ({**RTU, "host": "10.0.0.5"}, "host is a tcp setting, this meter is rtu"),
        ({**RTU, "device_id": 248}, "an RTU device_id is 1-247, not 248"),
        ({**RTU, "parity": "even"}, ".parity = 'even'"),
        ({**TCP, "timeout_s": 0}, ".timeout_s = 0"),
        ({**TCP, "transport": "udp"}, ".transport = 'udp'"),
        ({**TCP, "poll": 5}, ".poll: unknown key"),
    ],
)
def test_meter_mistakes_name_the_key_and_value(
    tmp_path: Path, meter: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        shop_with_meters(tmp_path, {"cnc-01": [meter]})
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'shop.toml'}: machine[0] (id=cnc-01).meter[0] (id=")
    assert expected in message


@pytest.mark.parametrize(
    ("meters", "expected"),
    [
        (
            {"a": [TCP], "b": [{**TCP, "host": "10.0.0.6"}]},
            "machine[1] (id=b).meter[0] (id=pm1): id 'pm1' is already used by machine[0]",
        ),
        (
            {"a": [RTU], "b": [{**RTU, "id": "pz2"}]},
            "machine[1] (id=b).meter[0] (id=pz2).device_id = 1: already used on rtu:/dev/ttyUSB0",
        ),
        (
            {"a": [RTU], "b": [{**RTU, "id": "pz2", "device_id": 2, "baudrate": 19200}]},
            "meters on one RS485 line must share its settings",
        ),
    ],
)
def test_rules_across_meters_are_checked_at_start_up(
    tmp_path: Path, meters: dict[str, list[dict[str, Any]]], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        ModbusInput.from_config(shop_with_meters(tmp_path, meters))
    assert expected in str(err.value)


def test_a_site_meters_modbus_meter_shares_the_bus_rules(tmp_path: Path) -> None:
    cfg = shop_with_meters(tmp_path, {"a": [RTU]})
    pv = {"id": "pv", "role": "production", "rated_w": 10_000, "meter": [{**RTU, "id": "pz2"}]}
    with pytest.raises(ConfigError) as err:
        ModbusInput.from_config(cfg.model_copy(update={"site_meter": [SiteMeter(**pv)]}))
    assert "site_meter[0] (id=pv).meter[0] (id=pz2).device_id = 1: already used on rtu:" in str(
        err.value
    )


def test_same_device_id_on_different_buses_is_fine(tmp_path: Path) -> None:
    meters: dict[str, list[dict[str, Any]]] = {
        "a": [TCP],
        "b": [{**TCP, "id": "pm2", "port": 5020}],
        "c": [RTU],
    }
    cfg = shop_with_meters(tmp_path, meters)
    assert len(ModbusInput.from_config(cfg).stats()) == 3


def test_a_map_path_is_relative_to_shop_toml_and_its_errors_name_the_map(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    custom = tmp_path / "maps" / "mine.toml"
    custom.write_text('description = "x"\nmax_registers = 10\npower = "p"\nenergy = "p"\n')
    # shop.toml takes the counter's resolution from the map, so loading it reads the map
    with pytest.raises(ConfigError) as err:
        shop_with_meters(tmp_path, {"a": [{**TCP, "model": "maps/mine.toml"}]})
    assert str(err.value).startswith(f"{custom}: value: required key is missing")
