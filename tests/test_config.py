"""shop.toml validation: the documented example loads, and every mistake names key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config, parse_config
from gateway.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "examples" / "shop.toml"


def _example() -> dict[str, Any]:
    with EXAMPLE.open("rb") as fh:
        return tomllib.load(fh)


def test_documented_example_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert list(cfg.machines) == ["cnc-01", "lathe-01"]
    assert cfg.tariff.band_names == ["standard", "peak", "night"]
    assert cfg.machines["cnc-01"].cost.depreciation_per_hour == pytest.approx(2.7)
    assert cfg.storage_dir == EXAMPLE.parent.resolve() / "shopwatt-data"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["site"].update(timezone="Mars/Base"), "site.timezone = 'Mars/Base'"),
        (
            lambda d: d["tariff"]["band"][0].update(start="25:00"),
            "tariff.band[0] (name=peak).start = '25:00'",
        ),
        (
            lambda d: d["machine"][0]["cost"].update(salvage=90000),
            "machine[0] (id=cnc-01).cost: salvage (90000.0) must not exceed purchase",
        ),
        (lambda d: d["machine"][1].update(bogus=1), "machine[1] (id=lathe-01).bogus: unknown key"),
        (lambda d: d["machine"][0].pop("rated_w"), "machine[0] (id=cnc-01).rated_w: required"),
        (lambda d: d["machine"][0].update(off_below_w=-5), "off_below_w = -5"),
        (lambda d: d["machine"][1].update(id="cnc-01"), "machine ids must be unique"),
        (
            lambda d: d.update(site_meter=[{"id": "cnc-01", "role": "grid", "rated_w": 1e4}]),
            "site_meter[0].id = 'cnc-01': already a machine, sensor or meter id",
        ),
        (
            lambda d: d.update(
                site_meter=[{"id": f"g{i}", "role": "grid", "rated_w": 1} for i in (1, 2)]
            ),
            "site_meter: 2 meters with role = 'grid'",
        ),
        (
            lambda d: d.update(site_meter=[{"id": "pv", "role": "solar", "rated_w": 1e4}]),
            "site_meter[0] (id=pv).role = 'solar'",
        ),
        (
            lambda d: d.update(site_meter=[{"id": "grid", "role": "grid"}]),
            "site_meter[0] (id=grid).rated_w: required",
        ),
        (lambda d: d["tariff"]["band"][1].update(name="standard"), "'standard' is the tariff"),
        (lambda d: d["tariff"]["band"][1].update(days=["monday"]), "days"),
        (
            lambda d: d["pricing"]["machine"]["cnc-01"].update(per_hour=-1),
            "pricing.machine.cnc-01.per_hour = -1",
        ),
        (
            lambda d: d["pricing"]["machine"]["cnc-01"].update(hours="spindle"),
            "pricing.machine.cnc-01.hours = 'spindle'",
        ),
        (
            lambda d: d["pricing"]["lists"]["member"].update(saw={"per_hour": 1}),
            "pricing.lists.member.saw: not a machine id",
        ),
        (lambda d: d["pricing"].update(vat_rate=19), "pricing.vat_rate = 19"),
        (
            lambda d: d["tariff"].update(
                version=[
                    {"id": "b", "valid_from": "2026-12-01", "rate": 0.3},
                    {"id": "c", "valid_from": "2026-11-01", "rate": 0.3},
                ]
            ),
            "tariff.version: versions must be in valid_from order: 'c' (valid_from = 2026-11-01)",
        ),
        (
            lambda d: d["tariff"].update(
                version=[{"id": "v", "valid_from": "2026-12-01T00:00:00+01:00", "rate": 0.3}]
            ),
            "tariff.version[0] (id=v).valid_from = '2026-12-01T00:00:00+01:00'",
        ),
        (
            lambda d: d["tariff"].update(
                version=[{"id": d["tariff"]["id"], "valid_from": "2026-12-01", "rate": 0.3}]
            ),
            "tariff and version ids must be unique",
        ),
    ],
)
def test_bad_values_name_file_key_and_value(edit: Any, expected: str) -> None:
    data = _example()
    edit(data)
    with pytest.raises(ConfigError) as err:
        parse_config(data, Path("shop.toml"))
    assert str(err.value).startswith("shop.toml: ")
    assert expected in str(err.value)


def test_two_energy_sources_on_one_machine_are_refused_when_shop_toml_loads() -> None:
    data = _example()
    data["machine"][0]["sensor"] = [{"id": "s1"}]
    data["machine"][0]["meter"] = [
        {"id": "pm1", "model": "sdm120", "transport": "tcp", "host": "127.0.0.1"}
    ]
    with pytest.raises(ConfigError) as err:
        parse_config(data, Path("shop.toml"))
    assert str(err.value) == (
        "shop.toml: machine[0] (id=cnc-01): 2 energy sources "
        "(meter pm1, sensor s1); this version takes one [[machine.sensor]] or one "
        "[[machine.meter]] per machine"
    )


def test_a_whole_day_band_is_allowed_but_an_empty_one_is_not() -> None:
    data = _example()
    data["tariff"]["band"].append(
        {"name": "weekend", "rate": 0.2, "days": ["sat", "sun"], "start": "00:00", "end": "24:00"}
    )
    assert parse_config(data, Path("shop.toml")).tariff.band_names[-1] == "weekend"
    data["tariff"]["band"][-1]["end"] = "00:00"
    with pytest.raises(ConfigError, match="starts and ends at 00:00: empty"):
        parse_config(data, Path("shop.toml"))


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "shop.toml"
    bad.write_text('[site]\nid = "x\n')
    with pytest.raises(ConfigError, match=r"shop\.toml: not valid TOML: .*line 2"):
        load_config(bad)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def _resolution(machine: dict[str, Any]) -> float:
    """counter_resolution_wh of the example's first machine after `machine` is merged in."""
    data = _example()
    data["machine"][0].update(machine)
    return parse_config(data, Path("shop.toml")).machines["cnc-01"].counter_resolution_wh


def test_the_counter_resolution_comes_from_the_machines_source() -> None:
    em24 = {"id": "pm1", "model": "em24", "transport": "tcp", "host": "127.0.0.1"}
    assert _resolution({"meter": [em24]}) == pytest.approx(100.0)  # 0.1 kWh per count
    assert _resolution({"sensor": [{"id": "s1"}]}) == pytest.approx(0.001)  # 1 mWh
    assert _resolution({}) == pytest.approx(1.0)  # readings only from CSV files
    assert _resolution({"counter_resolution_wh": 10}) == pytest.approx(10.0)
    # a sensor channel that forwards a PZEM's counter counts in whole Wh
    assert _resolution({"sensor": [{"id": "s1"}], "counter_resolution_wh": 1}) == 1.0
    assert _resolution({"meter": [em24], "counter_resolution_wh": 200}) == 200.0


def test_a_counter_resolution_finer_than_the_meter_counts_is_refused() -> None:
    data = _example()
    data["machine"][0]["meter"] = [
        {"id": "pm1", "model": "em24", "transport": "tcp", "host": "127.0.0.1"}
    ]
    data["machine"][0]["counter_resolution_wh"] = 1
    with pytest.raises(ConfigError) as err:
        parse_config(data, Path("shop.toml"))
    assert str(err.value) == (
        "shop.toml: machine[0] (id=cnc-01).counter_resolution_wh = 1.0: finer than meter "
        "pm1 counts (em24: 100.0 Wh)"
    )


_EM24 = {"id": "pm1", "model": "em24", "transport": "tcp", "host": "127.0.0.1"}


def _site_meter(**source: Any) -> dict[str, Any]:
    """The example with a grid site meter read from `source` (sensor=[...], meter=[...])."""
    data = _example()
    data["site_meter"] = [{"id": "grid", "role": "grid", "rated_w": 2e4, **source}]
    return data


def test_a_site_meter_is_read_from_one_sensor_or_one_meter() -> None:
    cfg = parse_config(_site_meter(meter=[_EM24]), Path("shop.toml"))
    assert cfg.metered["grid"].counter_resolution_wh == pytest.approx(100.0)  # from its map
    cfg = parse_config(_site_meter(sensor=[{"id": "ct-grid"}]), Path("shop.toml"))
    assert cfg.metered["grid"].counter_resolution_wh == pytest.approx(0.001)
    with pytest.raises(ConfigError) as err:
        parse_config(_site_meter(sensor=[{"id": "ct-grid"}], meter=[_EM24]), Path("shop.toml"))
    assert str(err.value) == (
        "shop.toml: site_meter[0] (id=grid): 2 energy sources (meter pm1, sensor ct-grid); "
        "this version takes one [[site_meter.sensor]] or one [[site_meter.meter]] per site_meter"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"sensor": [{"id": "s1"}]}, "site_meter[0].sensor[0].id = 's1': already a sensor"),
        ({"meter": [_EM24 | {"id": "s1"}]}, "site_meter[0].meter[0].id = 's1': already a sensor"),
    ],
)
def test_a_site_meters_source_id_is_unique_in_the_shop(
    source: dict[str, Any], expected: str
) -> None:
    data = _site_meter(**source)
    data["machine"][0]["sensor"] = [{"id": "s1"}]
    with pytest.raises(ConfigError) as err:
        parse_config(data, Path("shop.toml"))
    assert expected in str(err.value)
