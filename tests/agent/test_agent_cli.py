"""`python -m agent`: the shop.toml it writes, and the errors a user can make."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent.cli import Duration, main
from gateway.config import load_config
from tests.agent.livedata import DATA, PLAN, SCHEDULE
from tests.servers import Mosquitto


def _shop(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "shop.toml"
    result = CliRunner().invoke(main, ["shop", "-o", str(path), *args])
    assert result.exit_code == 0, result.output
    return path


def _simulate(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", "--config", str(path), "--plan", str(PLAN), *args])


def test_shop_writes_a_valid_shop_toml_with_replicas_past_the_plan(tmp_path: Path) -> None:
    cfg = load_config(_shop(tmp_path, "--sensors", "9", "--broker", "127.0.0.1:1999"))
    ids = list(cfg.machines)
    assert len(ids) == 9 and ids[7:] == ["cnc-01.2", "cnc-02.2"]
    assert [s.id for m in cfg.machine for s in m.sensor][-1] == "cnc-02.2-ct"
    assert cfg.mqtt is not None and cfg.mqtt.port == 1999
    # A replica is the same kind of machine: same thresholds and cost figures.
    original, replica = (cfg.machines[m].model_dump(exclude={"id", "sensor"}) for m in ids[::7])
    assert original == replica


def test_a_metered_machine_gets_a_modbus_meter_instead_of_a_sensor(tmp_path: Path) -> None:
    path = _shop(tmp_path, "--plan", str(DATA / "metered-shop.toml"), "--meters", "127.0.0.1:5502")
    (machine,) = load_config(path).machine
    assert not machine.sensor
    (meter,) = machine.meter
    assert (meter.model, meter.port, meter.device_id) == ("sdm630", 5502, 1)
    assert meter.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "2"], "--rate 2.0: must be above 0 and at most 1 Hz"),
        (["--sensors", "5"], "--sensors 5, but only 3 machines have a [[machine.sensor]]"),
        (["--speed", "0"], "--speed 0.0, --duration 28800.0: must be > 0"),
    ],
)
def test_simulate_refuses_bad_options_naming_them(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = _simulate(_shop(tmp_path, "--plan", str(PLAN)), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_machine_the_plan_does_not_know_is_named(tmp_path: Path) -> None:
    path = _shop(tmp_path, "--plan", str(PLAN))
    path.write_text(path.read_text().replace('"laser-1"', '"laser-9"'))
    result = _simulate(path)
    assert result.exit_code == 2
    assert "machine 'laser-9': not in the shop plan (plan machines: mill-1," in result.output


def test_durations_read_like_people_write_them() -> None:
    d = Duration()
    assert [d.convert(v, None, None) for v in ("90", "90s", "30m", "8h", "2d", "1.5h")] == [
        90.0, 90.0, 1800.0, 28800.0, 172800.0, 5400.0,
    ]  # fmt: skip
    with pytest.raises(Exception, match="expected a positive number"):
        d.convert("soon", None, None)


def test_simulate_runs_the_shop_against_a_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = _shop(tmp_path, "--plan", str(PLAN), "--broker", f"127.0.0.1:{mosquitto.port}")
    span = ["--start", "2026-11-17T08:10", "--duration", "10m", "--speed", "1200"]
    result = _simulate(path, "--schedule", str(SCHEDULE), *span)
    assert result.exit_code == 0, result.output
    assert "180 readings" in result.output  # 3 sensors x 60 windows of 10 s
    assert "all delivered" in result.output
    assert "mill-1" in result.output
