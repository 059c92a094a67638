"""Hostile or broken input never crashes shopwatt: it gets a clear, named error.

Property tests over everything that reads bytes a user, a sensor or a meter controls:
shop.toml, meter map files, readings.csv/jobs.csv, the MQTT payload decoder and the
Modbus register decoder. Inputs are valid documents with random damage (a value replaced,
a key dropped or invented) and plain junk.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ShopConfig, load_config, parse_config
from gateway.errors import ConfigError, InputError
from gateway.inputs.csvfile import read_jobs
from gateway.inputs.protocol import REASONS, Rejected, decode
from gateway.meters.maps import MAPS_DIR, MeterMap, available_models, load_map
from gateway.meters.registers import decode as decode_registers
from gateway.meters.registers import plan_reads
from gateway.tomlmodel import validate_model
from tests.ledger.shop import csv_rows

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples/shop.toml"
VECTORS = ROOT / "tests/vectors"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Everything TOML (and JSON) can hold, nested a little.
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),  # NaN and infinities included
    st.text(max_size=12),
    st.datetimes(),
    st.dates(),
    st.times(),
)
TOML_VALUES = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)

Path_ = tuple[str | int, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in a nested document (the root excluded)."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    out = []
    for key, child in items:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


def _parent(doc: Any, path: Path_) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def damaged(draw: st.DrawFn, base: dict[str, Any], values: st.SearchStrategy[Any]) -> Any:
    """`base` with one to three random edits: a value replaced, a key dropped or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(doc)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, key = _parent(doc, path), path[-1]
        edit = draw(st.sampled_from(["replace", "drop", "add"]))
        if edit == "replace":
            parent[key] = draw(values)
        elif edit == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        else:
            parent.insert(int(key), draw(values))
    return doc


def _shop_dict() -> dict[str, Any]:
    doc = tomllib.loads(SHOP.read_text())
    doc["machine"][0]["sensor"] = [{"id": "s1", "channels": [0, 1]}]
    doc["machine"][1]["meter"] = [
        {"id": "m1", "model": "sdm630", "transport": "tcp", "host": "10.0.0.5"}
    ]
    doc["mqtt"] = {"username": "gw", "secret_file": "mqtt.password"}
    doc["influxdb"] = {"url": "http://127.0.0.1:8086", "database": "shopwatt"}
    return doc


SHOP_DICT = _shop_dict()


def test_the_undamaged_documents_are_valid() -> None:
    assert isinstance(parse_config(copy.deepcopy(SHOP_DICT), SHOP), ShopConfig)
    for model in available_models():
        assert load_map(MAPS_DIR / f"{model}.toml").value


@SETTINGS
@given(doc=damaged(SHOP_DICT, TOML_VALUES))
def test_a_damaged_shop_toml_is_a_config_error_naming_the_file(doc: Any) -> None:
    source = Path("/etc/shopwatt/shop.toml")
    try:
        parse_config(doc, source)
    except ConfigError as err:
        assert str(err).startswith(f"{source}: ")
        assert "Traceback" not in str(err)


@SETTINGS
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_as_shop_toml_is_a_config_error_or_a_config(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shop.toml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_config(path)
        except ConfigError as err:
            assert str(err).startswith(str(path))


MAP_DICT = tomllib.loads((MAPS_DIR / "sdm630.toml").read_text())


@SETTINGS
@given(doc=damaged(MAP_DICT, TOML_VALUES))
def test_a_damaged_meter_map_is_a_config_error(doc: Any) -> None:
    source = Path("my-meter.toml")
    try:
        validate_model(MeterMap, doc, source)
    except ConfigError as err:
        assert str(err).startswith(f"{source}: ")


# -- readings.csv / jobs.csv --------------------------------------------------------------

MACHINES = parse_config(copy.deepcopy(SHOP_DICT), SHOP).machines
_cells = st.one_of(
    st.sampled_from(
        [
            "2026-11-03T08:00:00+01:00",
            "2026-11-03T08:00:00Z",
            "2026-11-03T08:00:00",  # no offset
            "cnc-01",
            "lathe-01",
            "nope",
            "1500",
            "-3",
            "nan",
            "inf",
            "1e400",
            "",
            '"',
            "a,b",
            "J-1",
        ]
    ),
    st.text(max_size=8),
    st.floats().map(repr),
    st.datetimes().map(lambda t: t.isoformat()),
)
_headers = st.sampled_from(
    ["time,machine,watts", "time,machine,watts,wh", "job_id,machine,start,end,customer"]
) | st.lists(st.text(max_size=6), max_size=5).map(",".join)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A header (usually right) and rows of plausible and hostile cells."""
    rows = draw(st.lists(st.lists(_cells, max_size=6), max_size=8))
    lines = [draw(_headers), *(",".join(r) for r in rows)]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return prefix + text.encode("utf-8", "surrogatepass")


def _lone_cr(data: bytes) -> bool:
    return b"\r" in data.replace(b"\r\n", b"")


@pytest.mark.parametrize("reader", [csv_rows, read_jobs], ids=["readings", "jobs"])
@SETTINGS
@given(data=(csv_files() | st.binary(max_size=200)).filter(lambda d: not _lone_cr(d)))
def test_any_csv_is_an_input_error_naming_the_file_or_is_read(
    reader: Callable[..., Any], data: bytes
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(data)
        try:
            reader(path, MACHINES)
        except InputError as err:
            assert str(err).startswith(f"{path}"), str(err)


def test_classic_mac_line_ends_read_like_any_other(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b"time,machine,watts\r2026-11-03T08:00:00Z,cnc-01,100\r")
    assert csv_rows(path, MACHINES).watts.tolist() == [100.0]


def test_a_header_without_a_line_end_is_an_empty_file_not_a_parser_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"time,machine,watts")
    assert len(csv_rows(path, MACHINES)) == 0


@pytest.mark.parametrize("reader", [csv_rows, read_jobs], ids=["readings", "jobs"])
def test_a_stray_carriage_return_names_its_line(reader: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    header = b"time,machine,watts" if reader is csv_rows else b"job_id,machine,start,end"
    path.write_bytes(header + b"\n" + b'"a\rb' + b"\n")
    with pytest.raises(InputError, match=r"mixed\.csv line \d"):
        reader(path, MACHINES)


# -- MQTT payloads ------------------------------------------------------------------------

_VALID = {
    p.stem: json.loads(p.read_text())
    for kind in ("reading", "status", "job")
    for p in sorted((VECTORS / kind / "valid").glob("*.json"))
}
_KINDS = {"reading": "s1/reading", "status": "s1/status", "job": "job"}
_TOPICS = st.sampled_from(
    [f"shopwatt/v1/northside/cnc-01/{leaf}" for leaf in (*_KINDS.values(), "s1/cmd")]
) | st.text(max_size=40)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """A valid vector with random damage, or random bytes."""
    if draw(st.booleans()):
        return bytes(draw(st.binary(max_size=600)))
    doc = draw(damaged(draw(st.sampled_from(list(_VALID.values()))), JSON_VALUES))
    return json.dumps(doc, allow_nan=True).encode()


@SETTINGS
@given(topic=_TOPICS, payload=payloads())
def test_any_message_is_decoded_or_rejected_with_a_named_reason(topic: str, payload: bytes) -> None:
    # A rejection is not a user error but a counted event: it must name a protocol reason.
    try:
        decode(topic, payload)
    except Rejected as rejected:
        assert rejected.reason in REASONS


# -- Modbus registers ---------------------------------------------------------------------

_REQUESTS = [
    (model, request)
    for model in available_models()
    for request in plan_reads(
        load_map(MAPS_DIR / f"{model}.toml"), load_map(MAPS_DIR / f"{model}.toml").values
    )
]


@pytest.mark.parametrize(("model", "request_"), _REQUESTS, ids=[m for m, _ in _REQUESTS])
@SETTINGS
@given(data=st.data())
def test_any_register_contents_decode_to_numbers(model: str, request_: Any, data: Any) -> None:
    registers = data.draw(
        st.lists(st.integers(0, 0xFFFF), min_size=request_.count, max_size=request_.count)
    )
    values = decode_registers(request_, registers)
    assert set(values) == {v.name for v in request_.values}
    for v in request_.values:
        number = values[v.name]
        assert isinstance(number, float)
        assert math.isfinite(number) or v.type == "float32"  # NaN/inf only from float32
        # A value that is not plausible is refused by the map's rule, never passed on.
        if not math.isfinite(number):
            assert not v.accepts(number)
