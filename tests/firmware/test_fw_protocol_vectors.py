"""The protocol's test vectors agree with its JSON Schemas and its list of reject reasons.

`classify` is a reference decoder for docs/protocol.md's table of reject reasons (checked
in that order); the gateway's decoder must give every vector the same label.
"""

import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
SCHEMAS = ROOT / "docs" / "schemas"
SIZE_LIMIT = {"reading": 512, "job": 512, "status": 1024, "cmd": 256}
_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_TOPIC = re.compile(
    rf"^shopwatt/v1/(?P<site>{_ID})/(?P<machine>{_ID})/"
    rf"(?:(?P<sensor>{_ID})/(?P<leaf>reading|status|cmd)|(?P<job>job))$"
)

INDEX: list[dict[str, Any]] = json.loads((VECTORS / "index.json").read_text())
TOPICS: list[dict[str, Any]] = json.loads((VECTORS / "topics.json").read_text())


@cache
def validator(kind: str) -> Draft202012Validator:
    """The schema of one payload kind, itself checked against the metaschema."""
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _has_non_finite(node: Any) -> bool:
    if isinstance(node, float):
        return not math.isfinite(node)
    if isinstance(node, list):
        return any(_has_non_finite(v) for v in node)
    if isinstance(node, dict):
        return any(_has_non_finite(v) for v in node.values())
    return False


def _reason(kind: str, err: ValidationError) -> str:
    path = tuple(err.absolute_path)
    if path[:1] == ("v",) or (err.validator == "required" and "'v'" in err.message):
        return "bad_version"
    if kind == "reading" and path[:1] == ("ch",) and len(path) <= 2:
        return "bad_channels"
    return {
        "required": "missing_key",
        "additionalProperties": "unknown_key",
        "type": "bad_type",
        "minimum": "out_of_range",
        "maximum": "out_of_range",
        "enum": "bad_value",
        "pattern": "bad_value",
        "const": "bad_value",
    }[str(err.validator)]


def classify(kind: str, payload: bytes) -> str:
    """'valid' or the reject reason of one payload, in docs/protocol.md's check order."""
    if len(payload) > SIZE_LIMIT[kind]:
        return "too_large"
    try:
        doc = json.loads(payload.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return "not_json"
    if not isinstance(doc, dict):
        return "not_object"
    if "v" not in doc or type(doc["v"]) is not int or doc["v"] != 1:
        return "bad_version"
    if _has_non_finite(doc):
        return "not_finite"
    errors = list(validator(kind).iter_errors(doc))
    if not errors:
        return "valid"
    reasons = {_reason(kind, e) for e in errors}
    assert len(reasons) == 1, f"vector has more than one fault: {[e.message for e in errors]}"
    return reasons.pop()


@pytest.mark.parametrize("case", INDEX, ids=[c["file"] for c in INDEX])
def test_vector_label_matches_the_reference_decoder(case: dict[str, Any]) -> None:
    payload = (VECTORS / case["file"]).read_bytes()
    assert classify(case["kind"], payload) == case["expect"], case["note"]


def test_every_reject_reason_of_the_protocol_has_a_reading_vector() -> None:
    table = (ROOT / "docs" / "protocol.md").read_text().split("## What the gateway rejects")[1]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE)) - {"bad_topic"}
    labelled = {c["expect"] for c in INDEX if c["kind"] == "reading"} - {"valid"}
    assert documented - {"bad_value"} == labelled  # readings have no string-valued keys
    assert "bad_value" in {c["expect"] for c in INDEX}


def test_invalid_vectors_break_the_schema_or_a_rule_outside_it() -> None:
    # too_large and not_finite can be schema-valid JSON documents (whitespace, NaN):
    # those two checks are the decoder's own, everything else the schema catches.
    for case in INDEX:
        if case["expect"] in ("valid", "too_large", "not_finite", "not_json", "not_object"):
            continue
        doc = json.loads((VECTORS / case["file"]).read_bytes())
        assert not validator(case["kind"]).is_valid(doc), case["file"]


@pytest.mark.parametrize("case", TOPICS, ids=[c["topic"][:60] for c in TOPICS])
def test_topic_vectors(case: dict[str, Any]) -> None:
    m = _TOPIC.match(case["topic"])
    if case["expect"] == "bad_topic":
        assert m is None, case["note"]
        return
    assert m is not None
    assert (m["leaf"] or m["job"]) == case["expect"]
    assert (m["site"], m["machine"], m["sensor"]) == (case["site"], case["machine"], case["sensor"])


def test_protocol_example_is_the_vector_and_its_size_is_stated() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    example = (VECTORS / "reading" / "valid" / "three_channels.json").read_bytes()
    assert example.decode() in doc
    assert f"{len(example)} bytes" in doc
