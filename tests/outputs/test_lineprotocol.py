"""Line protocol: awkward names and values reach InfluxDB exactly as they were given."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.outputs.lineprotocol import float_lines, format_field, line, series_key
from tests.servers import Influxd

AWKWARD = ["a,b", "a b", "a=b", 'say "hi"', r"back\slash", "ü-ñ €", "a, b=c d"]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_tag_values_field_keys_and_strings_round_trip(
    influxd: Influxd, influx_db: str, value: str
) -> None:
    text = line(
        "power meter",
        {"machine": value, "site": "s"},
        {value: 1.5, "note": value + ' \\ "end" \\'},
        1_700_000_000_000,
    )
    assert text is not None
    influxd.write([text], influx_db)
    rows = influxd.rows('SELECT * FROM "power meter" GROUP BY *', influx_db)
    assert rows == [
        {
            "machine": value,
            "site": "s",
            "time": 1_700_000_000_000,
            value: 1.5,
            "note": value + ' \\ "end" \\',
        }
    ]


def test_numbers_round_trip_exactly_and_keep_their_type(influxd: Influxd, influx_db: str) -> None:
    fields = {"f": 0.1 + 0.2, "tiny": 1e-300, "big": 1.5e300, "n": 2**62, "neg": -7, "on": True}
    text = line("m", {"site": "s"}, fields, 5)
    assert text == (
        "m,site=s f=0.30000000000000004,tiny=1e-300,big=1.5e+300,n=4611686018427387904i,"
        "neg=-7i,on=true 5"
    )
    influxd.write([text], influx_db)
    assert influxd.rows("SELECT * FROM m", influx_db) == [{"time": 5, "site": "s", **fields}]
    types = {r["fieldKey"]: r["fieldType"] for r in influxd.rows("SHOW FIELD KEYS", influx_db)}
    assert types == {
        "f": "float",
        "tiny": "float",
        "big": "float",
        "n": "integer",
        "neg": "integer",
        "on": "boolean",
    }


def test_newlines_in_strings_become_spaces() -> None:
    assert format_field("line one\nline two\r") == '"line one line two "'


def test_values_influxdb_cannot_store_are_left_out() -> None:
    assert line("m", {"site": "s"}, {"a": math.nan, "b": 2.0, "c": math.inf}, 1) == (
        "m,site=s b=2.0 1"
    )
    assert line("m", {"site": "s"}, {"a": math.nan}, 1) is None
    assert format_field(np.float64(-0.5)) == "-0.5"
    assert format_field(np.int64(3)) == "3i"


def test_tags_are_sorted_and_empty_values_left_out() -> None:
    assert series_key("m", {"site": "s", "machine": "m1", "band": ""}) == "m,machine=m1,site=s"


@pytest.mark.parametrize("bad", ["two\nlines", "ends with \\", ""])
def test_unrepresentable_tags_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="line protocol cannot carry"):
        series_key("m", {"machine": bad} if bad else {"": "x"})


def test_float_columns_skip_missing_values_and_keep_time_order() -> None:
    t = np.array([10, 20, 30, 40], dtype=np.int64)
    watts = np.array([1.0, np.nan, 3.0, np.nan])
    wh = np.array([0.5, 0.75, np.nan, np.nan])
    assert float_lines("p,site=s", t, {"watts": watts, "wh": wh}) == [
        "p,site=s watts=1.0,wh=0.5 10",
        "p,site=s wh=0.75 20",
        "p,site=s watts=3.0 30",
    ]
