"""The sensor protocol v1 (docs/protocol.md): topics and payloads in, typed records out.

This is the MQTT input's hot path: one `json.loads` and direct type and range checks per
message, no JSON Schema (the schemas in docs/schemas/ pin the same rules for the tests).
A payload that breaks a rule raises `Rejected` with the reason the protocol's table names,
checked in the table's order: the first reason that applies wins, exactly as the labels of
tests/vectors/ say.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

from gateway.engine.localtime import PLAUSIBLE_FIRST_MS

Kind = Literal["reading", "status", "job", "cmd"]

# Reject reasons in the order the checks run (docs/protocol.md, "What the gateway rejects").
BAD_TOPIC = "bad_topic"
TOO_LARGE = "too_large"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
BAD_VERSION = "bad_version"
MISSING_KEY = "missing_key"
UNKNOWN_KEY = "unknown_key"
BAD_TYPE = "bad_type"
NOT_FINITE = "not_finite"
BAD_CHANNELS = "bad_channels"
OUT_OF_RANGE = "out_of_range"
BAD_VALUE = "bad_value"
REASONS = (
    BAD_TOPIC,
    TOO_LARGE,
    NOT_JSON,
    NOT_OBJECT,
    BAD_VERSION,
    MISSING_KEY,
    UNKNOWN_KEY,
    BAD_TYPE,
    NOT_FINITE,
    BAD_CHANNELS,
    OUT_OF_RANGE,
    BAD_VALUE,
)
# The document-level faults, ranked: the lowest rank found names the rejection.
_RANK = {r: k for k, r in enumerate(REASONS)}
_CLEAN = len(REASONS)

SIZE_LIMIT: dict[Kind, int] = {"reading": 512, "job": 512, "status": 1024, "cmd": 256}
_MAX_CHANNELS = 4  # ch of a reading or a status: 3 CTs and a meter

_I32 = 2_147_483_647
_T_MIN, _T_MAX = PLAUSIBLE_FIRST_MS, 4_102_444_799_999  # 2020-01-01 .. 2099-12-31, UTC ms
# How far a time may run ahead of the clock of the computer that takes it in: a day covers
# any time-zone or drift confusion; beyond it the time is wrong, not early (docs/protocol.md).
AHEAD_MS = 86_400_000
_U_MAX = 9_007_199_254_740_991  # 2**53 - 1: the largest integer a JSON double keeps exactly
_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_TOPIC = re.compile(
    rf"shopwatt/v1/(?P<site>{_ID})/(?P<machine>{_ID})/"
    rf"(?:(?P<sensor>{_ID})/(?P<leaf>reading|status|cmd)|job)"
)
# No C0 control character and no DEL: job ids and customers end up in CSV and XLSX cells.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# An ISO 14443-A card UID (single, double or triple size) in uppercase hex.
_CARD = re.compile(r"[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}")


def plausible_window(now_ms: int | None) -> tuple[int, int]:
    """First and last UTC ms a reading or job event may carry: from the protocol's lower
    bound to a day after now_ms (None: no clock to compare with, the protocol's upper bound)."""
    return _T_MIN, _T_MAX if now_ms is None else min(_T_MAX, now_ms + AHEAD_MS)


class Rejected(Exception):
    """A topic or payload the protocol does not allow; `reason` is its counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Topic:
    """Where a message arrived: its kind and the ids in the topic."""

    kind: Kind
    site: str
    machine: str
    sensor: str | None  # None on the job topic (a job belongs to the machine)


@lru_cache(maxsize=4096)  # a shop has a bounded set of topics; bad ones raise (not cached)
def parse_topic(topic: str) -> Topic:
    """The kind and ids of a protocol topic; Rejected(bad_topic) for any other shape."""
    m = _TOPIC.fullmatch(topic)
    if m is None:
        raise Rejected(BAD_TOPIC, topic[:200])
    # The pattern allows no other leaf than the four kinds.
    return Topic(cast(Kind, m["leaf"] or "job"), m["site"], m["machine"], m["sensor"])


Channel = list[float]  # [irms A, mean power W, cumulative counter Wh], as decoded


class SensorReading(NamedTuple):
    """One measurement window of one sensor (docs/protocol.md, "Reading").

    A NamedTuple, not a frozen dataclass: built once per message on the hot path, where
    a frozen dataclass's per-field __setattr__ costs more than the JSON parse.
    """

    b: int  # boot counter
    s: int  # sequence number within the boot
    t: int | None  # window end, UTC ms; None while the sensor's clock is not synced
    u: int  # uptime at window end, ms
    w: int  # window length, ms
    n: int  # ADC sample sets in the window
    vr: float | None  # RMS voltage, V
    ch: list[Channel | None]  # None: a meter channel whose meter did not answer
    c: int  # clipped ADC samples
    x: int  # readings discarded by the sensor since its boot (offline buffer full)
    e: int  # Modbus errors in the window
    r: int | None  # RSSI, dBm
    h: int | None  # free heap, bytes


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A sensor's retained status, or its last will (state 'offline')."""

    state: Literal["online", "offline"]
    boot: int
    fw: str | None
    rssi: int | None
    t: int | None
    up: int | None
    buf: int | None  # readings waiting in the sensor's offline buffer
    lost: int | None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """An explicit job start or stop for the machine of the topic."""

    event: Literal["start", "stop"]
    job: str
    t: int  # UTC ms
    customer: str | None
    parts: int | None
    src: str
    card: str = ""  # the UID of the card that started or stopped it, for the gateway to map


CommandName = Literal["status", "persist", "reboot"]


@dataclass(frozen=True, slots=True)
class Command:
    """A command to one sensor (the gateway only ever checks these)."""

    cmd: CommandName


# A field is (JSON type, nullable, low, high): "int" follows JSON Schema (4242.0 and 1e4
# are integers, 4242.5 and booleans are not), "num" is any JSON number.
_Field = tuple[Literal["int", "num"], bool, float, float]

_READING: dict[str, _Field] = {
    "b": ("int", False, 1, _I32),
    "s": ("int", False, 0, _I32),
    "t": ("int", True, _T_MIN, _T_MAX),
    "u": ("int", False, 0, _U_MAX),
    "w": ("int", False, 1, 3_600_000),
    "n": ("int", False, 0, _I32),
    "vr": ("num", True, 0, 1000),
    "c": ("int", False, 0, _I32),
    "x": ("int", False, 0, _I32),
    "e": ("int", False, 0, _I32),
    "r": ("int", True, -127, 0),
    "h": ("int", True, 0, _I32),
}
_READING_KEYS = frozenset({"v", "ch", *_READING})
_reading_values = operator.itemgetter(
    "b", "s", "t", "u", "w", "n", "vr", "ch", "c", "x", "e", "r", "h"
)
# irms A, p W (negative: noise or a CT clamped the wrong way), wh Wh.
_CHANNEL: tuple[_Field, ...] = (
    ("num", False, 0, 1000),
    ("num", False, -1_000_000, 1_000_000),
    ("num", False, 0, 999_999_999_999.999),
)

_STATUS: dict[str, _Field] = {
    "boot": ("int", False, 1, _I32),
    "rssi": ("int", True, -127, 0),
    "t": ("int", True, _T_MIN, _T_MAX),
    "up": ("int", False, 0, _U_MAX),
    "win": ("int", False, 1, 3_600_000),
    "buf": ("int", False, 0, _I32),
    "lost": ("int", False, 0, _I32),
    "cmd_bad": ("int", False, 0, _I32),
}
_STATUS_RESETS = frozenset(
    {"power", "watchdog", "soft", "deepsleep", "hard", "brownout", "unknown"}
)
_STATUS_KEYS = frozenset({"v", "state", "fw", "ip", "reset", "ch", *_STATUS})
_STATUS_REQUIRED = frozenset({"v", "state", "boot"})
_CHANNEL_INFO_KEYS = frozenset({"name", "src", "power"})

_JOB: dict[str, _Field] = {
    "t": ("int", False, _T_MIN, _T_MAX),
    "parts": ("int", False, 0, 1_000_000_000),
}
_JOB_KEYS = frozenset({"v", "event", "job", "customer", "src", "card", *_JOB})
_JOB_REQUIRED = frozenset({"v", "event", "job", "t"})


class _Check:
    """Collects the faults of one document; the lowest-ranked one names the rejection."""

    __slots__ = ("detail", "rank")

    def __init__(self) -> None:
        self.rank = _CLEAN
        self.detail = ""

    def fault(self, reason: str, detail: str) -> None:
        rank = _RANK[reason]
        if rank < self.rank:
            self.rank, self.detail = rank, detail

    def keys(self, doc: dict[str, Any], allowed: frozenset[str], required: frozenset[str]) -> None:
        if doc.keys() - allowed:
            self.fault(UNKNOWN_KEY, ", ".join(sorted(doc.keys() - allowed))[:100])
        if required - doc.keys():
            self.fault(MISSING_KEY, ", ".join(sorted(required - doc.keys())))

    def value(self, key: str, v: Any, spec: _Field) -> Any:
        """The value, typed; None (and a fault) when it breaks its type or range."""
        kind, nullable, lo, hi = spec
        if v is None:
            if not nullable:
                self.fault(BAD_TYPE, f"{key} is null")
            return None
        tv = type(v)  # `type is`, not isinstance: a JSON true must not pass as the int 1
        if kind == "int" and tv is float and v.is_integer():
            v = int(v)
        elif tv is not int and (kind == "int" or tv is not float):
            self.fault(BAD_TYPE, f"{key} = {v!r:.40}")
            return None
        # NaN fails every comparison, so a non-finite number lands here too (and the
        # document scan in _verdict renames it not_finite).
        if not lo <= v <= hi:
            self.fault(OUT_OF_RANGE, f"{key} = {v!r:.40}")
        return v

    def text(self, key: str, v: Any, max_len: int, min_len: int = 0, plain: bool = True) -> str:
        """A string field of bounded length; `plain`: without control characters."""
        if type(v) is not str:
            self.fault(BAD_TYPE, f"{key} = {v!r:.40}")
            return ""
        if len(v) > max_len:  # the limit in the message: a cut value alone does not say it
            self.fault(BAD_VALUE, f"{key} = {v[:40]!r}...: longer than {max_len} characters")
        elif len(v) < min_len or (plain and _CONTROL.search(v)):
            self.fault(BAD_VALUE, f"{key} = {v!r:.40}")
        return v

    def choice(self, key: str, v: Any, allowed: frozenset[str]) -> str:
        """A string from a fixed set (JSON Schema enum: any other value is bad_value)."""
        if type(v) is not str or v not in allowed:
            self.fault(BAD_VALUE, f"{key} = {v!r:.40}")
            return ""
        return v

    def verdict(self, doc: dict[str, Any]) -> None:
        """Raise the rejection, if any. A non-finite number anywhere outranks schema faults."""
        if self.rank == _CLEAN:
            return
        if _has_non_finite(doc):
            raise Rejected(NOT_FINITE, "NaN, Infinity or a number beyond the float range")
        raise Rejected(REASONS[self.rank], self.detail)


def _has_non_finite(node: Any) -> bool:
    """True when the document holds NaN or +-Infinity anywhere (only run for bad documents)."""
    if type(node) is float:
        return not math.isfinite(node)
    if type(node) is list:
        return any(_has_non_finite(v) for v in node)
    if type(node) is dict:
        return any(_has_non_finite(v) for v in node.values())
    return False


def _document(kind: Kind, payload: bytes) -> dict[str, Any]:
    """Size, UTF-8 + JSON, object and version: the checks before the per-field ones."""
    if len(payload) > SIZE_LIMIT[kind]:
        raise Rejected(TOO_LARGE, f"{len(payload)} bytes, limit {SIZE_LIMIT[kind]}")
    try:
        # Decode first: json.loads(bytes) would also accept UTF-16 and UTF-32.
        doc = json.loads(payload.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise Rejected(NOT_JSON, str(err)[:100]) from None
    except RecursionError:  # '[[[[...' nested beyond the interpreter's limit
        raise Rejected(NOT_JSON, "nested too deeply") from None
    if type(doc) is not dict:
        raise Rejected(NOT_OBJECT, type(doc).__name__)
    v = doc.get("v")
    if type(v) is not int or v != 1:
        raise Rejected(BAD_VERSION, f"v = {v!r:.20}")
    return doc


def decode_reading(payload: bytes) -> SensorReading:
    """A reading payload -> SensorReading; Rejected with the protocol's reason otherwise."""
    doc = _document("reading", payload)
    return _canonical_reading(doc) or _checked_reading(doc)


def _bounds_check(names: tuple[str, ...], specs: tuple[_Field, ...]) -> Callable[..., bool]:
    """A straight-line test of `specs` on positional values: types as written, in range.

    Compiled from the tables once at import (as `dataclasses` builds its methods), so the
    fast path restates no bound; a loop over the specs would double its cost per message.
    It never rejects: a float in an "int" field, or any fault, makes it False and the
    general path decides.
    """
    clauses = []
    for name, (kind, nullable, lo, hi) in zip(names, specs, strict=True):
        typed = f"type({name}) is int" if kind == "int" else f"type({name}) in _NUMBER"
        clause = f"{typed} and {lo!r} <= {name} <= {hi!r}"
        clauses.append(f"({name} is None or ({clause}))" if nullable else clause)
    source = f"lambda {', '.join(names)}: {' and '.join(clauses)}"
    return cast(Callable[..., bool], eval(source, {"_NUMBER": (float, int)}))


_reading_in_bounds = _bounds_check(tuple(_READING), tuple(_READING.values()))
_channel_in_bounds = _bounds_check(("irms", "p", "wh"), _CHANNEL)
_reading_fields = operator.itemgetter(*_READING)


def _canonical_reading(doc: dict[str, Any]) -> SensorReading | None:
    """The fast path: a reading as the firmware writes it (ints as ints, no fault), or None.

    Straight-line checks cost a third of the general path; anything unusual (4242.0 for
    an integer, a fault) takes the general path, which gives the same answer slowly.
    """
    if doc.keys() != _READING_KEYS or not _reading_in_bounds(*_reading_fields(doc)):
        return None
    ch = doc["ch"]
    if type(ch) is not list or not 1 <= len(ch) <= _MAX_CHANNELS:
        return None
    for item in ch:
        if item is not None and (
            type(item) is not list or len(item) != 3 or not _channel_in_bounds(*item)
        ):
            return None
    return SensorReading(*_reading_values(doc))


def _checked_reading(doc: dict[str, Any]) -> SensorReading:
    """The general path: every rule, faults ranked; raises Rejected or returns the reading."""
    check = _Check()
    if doc.keys() != _READING_KEYS:
        check.keys(doc, _READING_KEYS, _READING_KEYS)
    f = {key: check.value(key, doc.get(key), spec) for key, spec in _READING.items()}
    ch = doc.get("ch")
    channels: list[Channel | None] = []
    if type(ch) is not list or not 1 <= len(ch) <= _MAX_CHANNELS:
        check.fault(BAD_CHANNELS, f"ch = {ch!r:.40}")
    else:
        for i, item in enumerate(ch):
            if item is None:
                channels.append(None)
            elif type(item) is not list or len(item) != 3:
                check.fault(BAD_CHANNELS, f"ch[{i}] = {item!r:.40}")
            else:
                channels.append(
                    [check.value(f"ch[{i}][{j}]", item[j], _CHANNEL[j]) for j in range(3)]
                )
    check.verdict(doc)
    return SensorReading(ch=channels, **f)


def decode_status(payload: bytes) -> StatusReport:
    """A status payload (online, or the offline last will) -> StatusReport."""
    doc = _document("status", payload)
    check = _Check()
    state = check.choice("state", doc.get("state"), frozenset({"online", "offline"}))
    required = _STATUS_KEYS if state == "online" else _STATUS_REQUIRED
    check.keys(doc, _STATUS_KEYS, required)
    f = {key: check.value(key, doc[key], spec) for key, spec in _STATUS.items() if key in doc}
    if "fw" in doc:
        check.text("fw", doc["fw"], 32, min_len=1, plain=False)
    if "ip" in doc and (type(doc["ip"]) is not str or not _IPV4.fullmatch(doc["ip"])):
        check.fault(BAD_TYPE if type(doc["ip"]) is not str else BAD_VALUE, "ip")
    if "reset" in doc:
        check.choice("reset", doc["reset"], _STATUS_RESETS)
    if "ch" in doc:
        _status_channels(check, doc["ch"])
    check.verdict(doc)
    fw = doc.get("fw")
    return StatusReport(
        state=cast(Literal["online", "offline"], state),
        boot=f["boot"],
        fw=fw if isinstance(fw, str) else None,
        rssi=f.get("rssi"),
        t=f.get("t"),
        up=f.get("up"),
        buf=f.get("buf"),
        lost=f.get("lost"),
    )


def _status_channels(check: _Check, ch: Any) -> None:
    """The status's channel list: 1..4 objects with name, src and power."""
    if type(ch) is not list:
        check.fault(BAD_TYPE, "ch is not an array")
        return
    if not 1 <= len(ch) <= _MAX_CHANNELS:
        check.fault(BAD_CHANNELS, f"{len(ch)} channels")
    for item in ch:
        if type(item) is not dict:
            check.fault(BAD_TYPE, "a channel is not an object")
            continue
        check.keys(item, _CHANNEL_INFO_KEYS, _CHANNEL_INFO_KEYS)
        name = item.get("name")
        if "name" in item and (type(name) is not str or not _CHANNEL_NAME.fullmatch(name)):
            check.fault(BAD_TYPE if type(name) is not str else BAD_VALUE, f"ch name {name!r:.40}")
        if "src" in item:
            check.choice("src", item["src"], frozenset({"ct", "meter"}))
        if "power" in item:
            check.choice("power", item["power"], frozenset({"real", "apparent"}))


def decode_job(payload: bytes) -> JobEvent:
    """A job event payload -> JobEvent."""
    doc = _document("job", payload)
    check = _Check()
    event = check.choice("event", doc.get("event"), frozenset({"start", "stop"}))
    # JSON Schema's if/then: a start names its customer, or carries a card to map to one.
    extra = {"customer"} if event == "start" and "card" not in doc else set()
    check.keys(doc, _JOB_KEYS, _JOB_REQUIRED | extra)
    f = {key: check.value(key, doc[key], spec) for key, spec in _JOB.items() if key in doc}
    job = check.text("job", doc.get("job"), 64, min_len=1) if "job" in doc else ""
    customer = check.text("customer", doc["customer"], 128) if "customer" in doc else None
    src = check.text("src", doc["src"], 64) if "src" in doc else ""
    card = doc.get("card", "")
    if type(card) is not str:
        check.fault(BAD_TYPE, f"card = {card!r:.40}")
    elif "card" in doc and not _CARD.fullmatch(card):
        check.fault(BAD_VALUE, f"card = {card!r:.40}")
    check.verdict(doc)
    return JobEvent(
        event=cast(Literal["start", "stop"], event),
        job=job,
        t=f["t"],
        customer=customer,
        parts=f.get("parts"),
        src=src,
        card=card,
    )


def decode_command(payload: bytes) -> Command:
    """A command payload -> Command (what a sensor accepts on its cmd topic)."""
    doc = _document("cmd", payload)
    check = _Check()
    check.keys(doc, frozenset({"v", "cmd"}), frozenset({"v", "cmd"}))
    cmd = check.choice("cmd", doc.get("cmd"), frozenset({"status", "persist", "reboot"}))
    check.verdict(doc)
    return Command(cast(CommandName, cmd))


Decoded = SensorReading | StatusReport | JobEvent | Command
DECODERS: dict[Kind, Callable[[bytes], Decoded]] = {
    "reading": decode_reading,
    "status": decode_status,
    "job": decode_job,
    "cmd": decode_command,
}


def decode(topic: str, payload: bytes) -> tuple[Topic, Decoded]:
    """Route by topic and decode; Rejected names the first rule the message breaks."""
    where = parse_topic(topic)
    return where, DECODERS[where.kind](payload)
