"""The firmware's meter tables are generated from gateway/meters/*.toml and read like them."""

from pathlib import Path

import pytest

from firmware.config import METER_TYPES
from firmware.meters import Meter
from gateway.meters import firmware_tables
from gateway.meters.maps import MAPS_DIR, load_map
from gateway.meters.registers import encode


def test_the_committed_tables_are_what_the_maps_generate() -> None:
    # Fails when a map changed and `python -m gateway.meters.firmware_tables` was not run.
    assert firmware_tables.OUTPUT.read_text(encoding="utf-8") == firmware_tables.render()
    assert firmware_tables.main(["--check"]) == 0


def test_check_reports_stale_tables_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "meter_maps.py"
    stale.write_text(firmware_tables.render().replace("1000000", "100000"), encoding="utf-8")
    monkeypatch.setattr(firmware_tables, "OUTPUT", stale)
    assert firmware_tables.main(["--check"]) == 1
    assert f"stale: {stale}" in capsys.readouterr().err


def test_the_sensor_reads_every_single_phase_map_it_is_offered() -> None:
    assert list(METER_TYPES) == firmware_tables.firmware_models() == ["pzem004t", "sdm120"]


def test_the_sensor_scales_each_map_to_protocol_units_as_the_gateway_decodes_it() -> None:
    for model in METER_TYPES:
        m = load_map(MAPS_DIR / f"{model}.toml")
        energy_wh = 1_234_567 if m.wh_per_unit == 1 else 1_234_500  # past 16 bits of Wh
        numbers = {"voltage": 231.7, "current": 4.321, m.power: 998.7, m.energy: energy_wh}
        per_unit = {m.power: m.watts_per_unit, m.energy: m.wh_per_unit}  # W and Wh per unit
        held: dict[int, int] = {}  # the meter's registers
        for name, number in numbers.items():
            v = m.values[name]
            for i, word in enumerate(encode(v, number / per_unit.get(name, 1.0))):
                held[v.address + i] = word
        meter = Meter(model)
        regs = [[held.get(a, 0) for a in range(s, s + n)] for _, s, n in meter.requests()]
        got = meter.decode(regs)
        assert (got.dv, got.ma, got.dw, got.mwh) == (2317, 4321, 9987, energy_wh * 1000), model


def test_without_a_firmware_folder_it_says_so_in_one_line_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(firmware_tables, "OUTPUT", tmp_path / "firmware" / "meter_maps.py")
    assert firmware_tables.main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1
