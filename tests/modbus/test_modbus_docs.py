"""docs/modbus.md: its shop.toml example and its map example are valid as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.inputs.modbus import ModbusInput
from gateway.meters.maps import load_map

DOC = Path(__file__).resolve().parents[2] / "docs" / "modbus.md"
# What the doc leaves out of each [[machine]] as "# ...": not the subject of this page.
MACHINE = {
    "off_below_w": 5,
    "run_above_w": 50,
    "rated_w": 10_000,
    "cost": {"purchase": 1000, "life_hours": 1000},
}


def _toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)


def test_the_configuration_example_is_accepted(tmp_path: Path) -> None:
    example: dict[str, Any] = tomllib.loads(_toml_blocks()[0])
    data = {
        "site": {"id": "doc", "timezone": "Europe/Berlin"},
        "tariff": {"id": "flat", "rate": 0.3},
        "machine": [{**MACHINE, **m} for m in example["machine"]],
    }
    inp = ModbusInput.from_config(parse_config(data, tmp_path / "shop.toml"))
    buses = {source.rsplit("/", 1)[0] for source in inp.stats()}
    assert len(inp.stats()) == 4 and len(buses) == 3  # two meters share the RS485 line


def test_the_map_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "mymeter.toml"
    path.write_text(_toml_blocks()[1])
    m = load_map(path)
    assert (m.power, m.energy, m.values["power"].address) == ("power", "import_energy", 0x000C)
