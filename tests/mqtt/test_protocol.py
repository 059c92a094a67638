"""The gateway's decoder gives every protocol vector its label, and never crashes on junk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inputs.protocol import (
    _CHANNEL,
    _READING,
    REASONS,
    Rejected,
    SensorReading,
    _canonical_reading,
    _checked_reading,
    decode,
    decode_reading,
    parse_topic,
)
from tests.firmware.test_fw_protocol_vectors import _reason, classify, validator

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
INDEX: list[dict[str, Any]] = json.loads((VECTORS / "index.json").read_text())
TOPICS: list[dict[str, Any]] = json.loads((VECTORS / "topics.json").read_text())
READING_TOPIC = "shopwatt/v1/demo/cnc-01/esp32-a1b2c3/reading"
VALID_READING = (VECTORS / "reading/valid/three_channels.json").read_bytes()


def _reference(kind: str, payload: bytes) -> str:
    """The reference classifier; where one bad value breaks two schema rules (0.5 for an
    integer >= 1), the first of them in the protocol's check order."""
    try:
        return classify(kind, payload)
    except AssertionError:
        errors = validator(kind).iter_errors(json.loads(payload))
        return min({_reason(kind, e) for e in errors}, key=REASONS.index)


def _label(topic: str, payload: bytes) -> str:
    try:
        decode(topic, payload)
    except Rejected as rejected:
        return rejected.reason
    return "valid"


@pytest.mark.parametrize("case", INDEX, ids=[c["file"] for c in INDEX])
def test_vector_gets_its_label(case: dict[str, Any]) -> None:
    payload = (VECTORS / case["file"]).read_bytes()
    assert _label(case["topic"], payload) == case["expect"], case["note"]


@pytest.mark.parametrize("case", TOPICS, ids=[c["topic"][:60] for c in TOPICS])
def test_topic_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "bad_topic":
        with pytest.raises(Rejected) as err:
            parse_topic(case["topic"])
        assert err.value.reason == "bad_topic", case["note"]
        return
    topic = parse_topic(case["topic"])
    assert (topic.kind, topic.site, topic.machine, topic.sensor) == (
        case["expect"],
        case["site"],
        case["machine"],
        case["sensor"],
    )


def test_a_trailing_newline_does_not_sneak_through_the_topic_check() -> None:
    with pytest.raises(Rejected):
        parse_topic(READING_TOPIC + "\n")


def test_reading_values_are_typed_as_the_protocol_says() -> None:
    r = decode_reading((VECTORS / "reading/valid/noncanonical_numbers.json").read_bytes())
    assert isinstance(r, SensorReading)
    assert (r.s, r.w) == (4242, 10000)  # 4242.0 and 1e4 are integers
    assert type(r.s) is int and type(r.w) is int
    assert r.ch == [[12, 2790, 1234567.8912], [0.4, 61, 98765]]
    unreachable = decode_reading((VECTORS / "reading/valid/meter_unreachable.json").read_bytes())
    assert unreachable.ch[1] is None and unreachable.e == 5


# -- property-based: junk never crashes the decoder, and single faults match the reference

_VALID: list[tuple[str, bytes]] = [
    (c["topic"], (VECTORS / c["file"]).read_bytes()) for c in INDEX if c["expect"] == "valid"
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@st.composite
def _mutants(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid vector with bytes flipped, cut or inserted, or a key set to anything."""
    topic, payload = draw(st.sampled_from(_VALID))
    how = draw(st.sampled_from(["bytes", "value", "junk"]))
    if how == "junk":
        return topic, draw(st.binary(max_size=600))
    if how == "bytes":
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data)))
            data[i : i + draw(st.integers(0, 3))] = draw(st.binary(max_size=3))
        return topic, bytes(data)
    doc = json.loads(payload)
    key = draw(st.sampled_from([*doc, "zz"]))
    doc[key] = draw(_scalars | st.lists(_scalars, max_size=4))
    return topic, json.dumps(doc).encode()


@settings(max_examples=1000, deadline=None)
@given(case=_mutants())
def test_junk_is_rejected_with_a_known_reason_never_an_exception(case: tuple[str, bytes]) -> None:
    label = _label(*case)
    assert label == "valid" or label in REASONS


_VALID_DOC: dict[str, Any] = json.loads(VALID_READING)
_replacements = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet="abcé", max_size=3),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(
    key=st.sampled_from([*_VALID_DOC, "extra"]),
    value=_replacements,
    delete=st.booleans(),
)
def test_one_fault_in_a_reading_is_labelled_like_the_reference_decoder(
    key: str, value: Any, delete: bool
) -> None:
    doc = dict(_VALID_DOC)
    if delete and key in doc:
        del doc[key]
    else:
        doc[key] = value
    payload = json.dumps(doc).encode()
    assert _label(READING_TOPIC, payload) == _reference("reading", payload)


@settings(max_examples=200, deadline=None)
@given(
    channel=st.integers(0, 2),
    index=st.integers(0, 3),
    value=_replacements,
)
def test_one_fault_in_a_channel_is_labelled_like_the_reference_decoder(
    channel: int, index: int, value: Any
) -> None:
    doc = json.loads(VALID_READING)
    if index == 3:
        doc["ch"][channel] = value  # the whole channel
    else:
        doc["ch"][channel][index] = value
    payload = json.dumps(doc).encode()
    assert _label(READING_TOPIC, payload) == _reference("reading", payload)


def _edges(kind: str, nullable: bool, lo: float, hi: float) -> list[Any]:
    """A field's bounds and the nearest values outside them, in the field's own type."""
    step = 1 if kind == "int" else 0.001
    return [lo, hi, lo - step, hi + step, *([None] if nullable else [])]


def _fast_agrees_with_general(doc: dict[str, Any]) -> None:
    try:
        general: SensorReading | None = _checked_reading(doc)
    except Rejected:
        general = None
    # Accepts exactly what the general path accepts, with the same result.
    assert _canonical_reading(doc) == general, doc


def test_fast_path_accepts_and_refuses_at_the_tables_bounds() -> None:
    for key, spec in _READING.items():
        for value in _edges(*spec):
            _fast_agrees_with_general({**json.loads(VALID_READING), key: value})
    for j, spec in enumerate(_CHANNEL):
        for value in _edges(*spec):
            doc = json.loads(VALID_READING)
            doc["ch"][1][j] = value
            _fast_agrees_with_general(doc)
