# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""The encoders reproduce the canonical test vectors byte for byte."""

import json

from fw_support import VECTORS

from firmware import encode


def _index() -> "list[dict]":  # type: ignore[type-arg]
    with open(VECTORS + "/index.json") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _read(name: str) -> bytes:
    with open(VECTORS + "/" + name, "rb") as f:
        return f.read()


def _units(x: "float | None", scale: int) -> "int | None":
    # Vector values have at most as many decimals as the unit: round to the integer count.
    return None if x is None else int(x * scale + (0.5 if x >= 0 else -0.5))


def _encode_like(doc: dict) -> bytes:  # type: ignore[type-arg]
    ma, dw, mwh = [], [], []
    for ch in doc["ch"]:
        ma.append(None if ch is None else _units(ch[0], 1000))
        dw.append(0 if ch is None else _units(ch[1], 10))
        mwh.append(0 if ch is None else _units(ch[2], 1000))
    return encode.reading(
        doc["b"], doc["s"], doc["t"], doc["u"], doc["w"], doc["n"], _units(doc["vr"], 10),
        ma, dw, mwh, doc["c"], doc["x"], doc["e"], doc["r"], doc["h"],
    )  # fmt: skip


def test_readings_match_the_canonical_vectors() -> None:
    cases = [c for c in _index() if c["kind"] == "reading" and c.get("canonical")]
    assert len(cases) >= 8
    for case in cases:
        want = _read(case["file"])
        assert _encode_like(json.loads(want)) == want, case["file"]


def test_status_matches_the_canonical_vectors() -> None:
    online = json.loads(_read("status/valid/online.json"))
    chans = [(c["name"], c["src"], c["power"]) for c in online["ch"]]
    got = encode.status_online(
        online["fw"], online["boot"], online["ip"], online["rssi"], online["t"], online["up"],
        online["reset"], online["win"], online["buf"], online["lost"], online["cmd_bad"], chans,
    )  # fmt: skip
    assert got == _read("status/valid/online.json")
    assert encode.status_offline(17) == _read("status/valid/offline_lwt.json")


def test_fixed_decimals() -> None:
    assert encode.fixed(0, 3) == "0.000"
    assert encode.fixed(-4, 1) == "-0.4"
    assert encode.fixed(12345, 3) == "12.345"
    assert encode.fixed(999999999999999, 3) == "999999999999.999"
    assert encode.fixed(-10000000, 1) == "-1000000.0"
