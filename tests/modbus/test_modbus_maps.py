"""Register maps: each shipped map decodes datasheet-encoded registers to the right values,
reads are grouped as documented, and every mistake in a map file names file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.meters.maps import available_models, load_map
from gateway.meters.registers import decode, encode, plan_reads
from tests.modbus.modbus_helpers import shipped_map


def test_the_four_documented_meters_are_shipped() -> None:
    assert {"sdm630", "sdm120", "pzem004t", "em24"} <= set(available_models())


# Register images written by hand from the datasheets' encodings, not by our encoder:
# IEEE-754 1234.5 = 0x449A5000 and 5000.25 = 0x459C4200 (Eastron: high word first);
# PZEM: 2301 = 230.1 V, 0x0001E240 = 123456 (low word first); EM24: -12345 = 0xFFFFCFC7.
@pytest.mark.parametrize(
    ("model", "registers", "expected"),
    [
        (
            "sdm630",
            {0x0034: 0x449A, 0x0035: 0x5000, 0x0048: 0x459C, 0x0049: 0x4200},
            {"total_power": 1234.5, "import_energy": 5000.25},
        ),
        (
            "sdm120",
            {0x000C: 0x449A, 0x000D: 0x5000, 0x0048: 0x459C, 0x0049: 0x4200},
            {"power": 1234.5, "import_energy": 5000.25},
        ),
        (
            "pzem004t",
            {0: 2301, 1: 0xE240, 2: 0x0001, 3: 0x3039, 4: 0, 5: 0xE240, 6: 0x0001, 7: 500, 8: 97},
            {
                "voltage": 230.1,
                "current": 123.456,
                "power": 1234.5,
                "energy": 123456.0,
                "frequency": 50.0,
                "power_factor": 0.97,
            },
        ),
        (
            "em24",
            {0x0028: 0xCFC7, 0x0029: 0xFFFF, 0x0033: 500, 0x0034: 0xE240, 0x0035: 0x0001},
            {"power": -1234.5, "frequency": 50.0, "import_energy": 12345.6},
        ),
    ],
)
def test_each_map_decodes_datasheet_encodings(
    model: str, registers: dict[int, int], expected: dict[str, float]
) -> None:
    m = shipped_map(model)
    got: dict[str, float] = {}
    for rq in plan_reads(m, expected):
        image = [registers.get(rq.address + i, 0) for i in range(rq.count)]
        got.update(decode(rq, image))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("model", ["sdm630", "sdm120", "pzem004t", "em24"])
def test_encode_is_the_inverse_of_decode_for_every_value(model: str) -> None:
    m = shipped_map(model)
    numbers = {v.name: (123.4 if v.type.startswith("u") else -12.3) for v in m.value}
    got: dict[str, float] = {}
    for rq in plan_reads(m, m.values):
        image = [0] * rq.count
        for v in rq.values:
            image[v.address - rq.address : v.end - rq.address] = encode(v, numbers[v.name])
        got.update(decode(rq, image))
    # Fixed-point registers keep only their resolution (scale), floats keep ~7 digits.
    for v in m.value:
        assert got[v.name] == pytest.approx(numbers[v.name], abs=abs(v.scale) / 2 + 1e-4)


@pytest.mark.parametrize(
    ("model", "reads"),
    [
        # Eastron answers gaps: power (0x34) and import energy (0x48) in one 22-register read.
        ("sdm630", [(0x0034, 22)]),
        ("sdm120", [(0x000C, 62)]),
        # PZEM: power and energy are neighbours.
        ("pzem004t", [(0x0003, 4)]),
        # EM24 defines every register from W sys (0x28) to kWh (+) TOT (0x34-0x35).
        ("em24", [(0x0028, 14)]),
    ],
)
def test_a_poll_of_power_and_energy_is_one_request(
    model: str, reads: list[tuple[int, int]]
) -> None:
    m = shipped_map(model)
    plan = plan_reads(m, (m.power, m.energy))
    assert [(r.address, r.count) for r in plan] == reads


def test_max_registers_and_undefined_gaps_split_reads(tmp_path: Path) -> None:
    values = "".join(
        f'[[value]]\nname = "v{a}"\naddress = {a}\nunit = "W"\n\n' for a in (0, 2, 4, 10, 12)
    )
    body = 'description = "t"\npower = "v0"\nenergy = "e"\n\n' + values
    body += '[[value]]\nname = "e"\naddress = 40\nunit = "kWh"\nkind = "counter"\n'
    body += "resolution = 0.01\n"

    def plan(max_registers: int, max_gap: int) -> list[tuple[int, int]]:
        path = tmp_path / f"m{max_registers}-{max_gap}.toml"
        path.write_text(f"max_registers = {max_registers}\nmax_gap = {max_gap}\n" + body)
        m = load_map(path)
        return [(r.address, r.count) for r in plan_reads(m, [v.name for v in m.value])]

    # 0-5 are contiguous; 6-9 is an undefined gap of 4; 14-39 one of 26.
    assert plan(125, 0) == [(0, 6), (10, 4), (40, 2)]
    assert plan(125, 4) == [(0, 14), (40, 2)]
    assert plan(125, 26) == [(0, 42)]
    assert plan(4, 26) == [(0, 4), (4, 2), (10, 4), (40, 2)]


_GOOD = """description = "test meter"
max_registers = 10
power = "p"
energy = "e"

[[value]]
name = "p"
address = 0
unit = "W"

[[value]]
name = "e"
address = 2
unit = "kWh"
kind = "counter"
resolution = 0.01
"""


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('address = 0\nunit = "W"', 'address = 0\ntype = "float33"\nunit = "W"'),
            "value[0] (name=p).type = 'float33'",
        ),
        (("address = 2\n", "address = 1\n"), "values 'p' and 'e' overlap at 0x0001"),
        (('power = "p"', 'power = "watts"'), "power = 'watts' names no [[value]]"),
        (('unit = "W"', 'unit = "A"'), "power value 'p' must be a measurement in ['W', 'kW']"),
        (('kind = "counter"\nresolution = 0.01\n', ""), "energy value 'e' must be a counter"),
        (('unit = "W"', 'unit = "W"\nwrap = 100'), "wrap is only meaningful for kind = 'counter'"),
        (
            ('unit = "W"', 'unit = "W"\nresolution = 1'),
            "resolution is only meaningful for kind = 'counter'",
        ),
        (
            ("resolution = 0.01\n", ""),
            "value 'e': a float32 counter needs resolution (its smallest step, in kWh)",
        ),
        (("resolution = 0.01", "resolution = 0"), "value[1] (name=e).resolution = 0"),
        (("max_registers = 10", "max_registers = 200"), "max_registers = 200"),
        (
            ('address = 0\nunit = "W"', 'address = 0\nunit = "W"\nregister = 3'),
            "value[0] (name=p).register: unknown key",
        ),
        (
            ('description = "test meter"', '[defaults]\ntype = "double"\n\ndescription = "x"'),
            "defaults.type = 'double'",
        ),
        (("address = 2\n", "address = 0x10000\n"), "value[1] (name=e).address = 65536"),
    ],
)
def test_map_mistakes_name_file_key_and_value(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    path = tmp_path / "mymeter.toml"
    assert edit[0] in _GOOD
    path.write_text(_GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as err:
        load_map(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_defaults_apply_to_values_that_do_not_override_them(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text(
        _GOOD.replace(
            "[[value]]", '[defaults]\ntype = "int32"\nscale = 0.1\n\n[[value]]', 1
        ).replace('name = "e"', 'name = "e"\ntype = "uint16"\nscale = 1')
    )
    m = load_map(path)
    assert (m.values["p"].type, m.values["p"].scale) == ("int32", 0.1)
    assert (m.values["e"].type, m.values["e"].scale) == ("uint16", 1.0)


def test_counter_plausibility_uses_the_wrap() -> None:
    energy = shipped_map("pzem004t").values["energy"]
    assert energy.accepts(9_999_990.0)
    assert not energy.accepts(10_000_000.0)  # past 9999.99 kWh the module restarts at 0
    assert not energy.accepts(-1.0)
    assert not shipped_map("sdm630").values["total_power"].accepts(float("nan"))


@pytest.mark.parametrize(
    ("model", "wh"),
    [("em24", 100.0), ("pzem004t", 1.0), ("sdm120", 10.0), ("sdm630", 10.0)],
)
def test_each_map_states_its_energy_counters_resolution(model: str, wh: float) -> None:
    # EM24: int32 x 0.1 kWh; PZEM: uint32 Wh; Eastron: float32 kWh counting 0.01 kWh
    assert shipped_map(model).counter_resolution_wh == pytest.approx(wh)


def test_an_integer_counter_steps_by_its_scale_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "i.toml"
    path.write_text(_GOOD.replace("resolution = 0.01", 'type = "uint32"\nscale = 0.01'))
    assert load_map(path).counter_resolution_wh == pytest.approx(10.0)
    told = tmp_path / "r.toml"
    told.write_text(_GOOD.replace("resolution = 0.01", 'type = "uint32"\nresolution = 0.5'))
    assert load_map(told).counter_resolution_wh == pytest.approx(500.0)
