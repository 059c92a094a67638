"""What `shopwatt run` refuses at start-up, naming the file, the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.serviceshop import MACHINE, config, write_config
from gateway.errors import ConfigError
from gateway.service import Service
from tests.servers import LOOPBACK

METER = (
    '[[machine.meter]]\nid = "{id}"\nmodel = "sdm120"\ntransport = "tcp"\n'
    f'host = "{LOOPBACK}"\nport = 1502\ndevice_id = {{dev}}\n'
)


def test_a_sensor_id_is_unique_in_the_shop(tmp_path: Path) -> None:
    meters = MACHINE.format(id="press", source=METER.format(id="s1", dev=1))
    path = write_config(tmp_path, None, sensors={"mill": "s1"}, meters=meters)
    with pytest.raises(ConfigError, match=r"machine: sensor ids must be unique .*\['s1'\]"):
        config(path)


def test_sensors_need_a_broker(tmp_path: Path) -> None:
    meters = MACHINE.format(id="press", source=METER.format(id="pm1", dev=1))
    path = write_config(tmp_path, None, sensors={"mill": "s1"}, meters=meters)
    with pytest.raises(ConfigError, match=r"sensors s1 need an \[mqtt\] section"):
        Service(config(path))
    with pytest.raises(ConfigError, match="nothing to run"):
        Service(config(write_config(tmp_path, None, meters=MACHINE.format(id="mill", source=""))))
