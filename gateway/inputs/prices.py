"""Price files for `shopwatt prices import`: a plain `start,price` CSV, the ENTSO-E
Transparency Platform day-ahead CSV and aWATTar's JSON, read into slots in UTC ms.

Every slot is an instant range, so a day with 92 or 100 quarter hours (DST) needs no special
case; a bad line stops the import before anything is written, naming file, line and value.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from gateway.engine.demand import QUARTER_MS
from gateway.engine.localtime import utc_ms
from gateway.engine.model import PriceSlots
from gateway.errors import InputError

Format = Literal["plain", "entsoe", "awattar"]
FORMATS: tuple[Format, ...] = ("plain", "entsoe", "awattar")
# ENTSO-E: "26.10.2025 02:00 - 26.10.2025 02:15", a repeated hour marked " (CEST)"/" (CET)".
_MTU = re.compile(
    r"^(\d\d\.\d\d\.\d{4} \d\d:\d\d) - (\d\d\.\d\d\.\d{4} \d\d:\d\d)(?: \((CET|CEST)\))?$"
)
_MTU_TIME = "%d.%m.%Y %H:%M"
_OFFSET = {"CET": timedelta(hours=1), "CEST": timedelta(hours=2)}


@dataclass(frozen=True, slots=True)
class PriceFile:
    """A price file read and checked: its slots, and its sha256 for the audit trail."""

    path: Path
    sha256: str
    slots: PriceSlots


def _bad(path: Path, line: int, what: str, value: object, why: str) -> InputError:
    return InputError(f"{path} line {line}: {what} = {value!r}: {why}")


def _price(path: Path, line: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(path, line, "price", text, "not a number") from None
    if not math.isfinite(value):
        raise _bad(path, line, "price", text, "not a finite number")
    return value


def _plain(path: Path, text: str, minutes: int) -> list[tuple[int, int, float, int]]:
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0][:2]] != ["start", "price"]:
        raise InputError(f"{path} line 1: expected the header 'start,price'")
    found = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            raise _bad(path, n, "row", ",".join(row), "expected start,price")
        try:
            start = datetime.fromisoformat(row[0].strip())
        except ValueError:
            raise _bad(path, n, "start", row[0], "not an ISO 8601 time") from None
        if start.tzinfo is None:
            raise _bad(path, n, "start", row[0], "no UTC offset (ambiguous when clocks go back)")
        a = utc_ms(start)
        found.append((a, a + minutes * 60_000, _price(path, n, row[1]), n))
    return found


def _entsoe_time(text: str, kind: str | None, tz: ZoneInfo) -> int:
    wall = datetime.strptime(text, _MTU_TIME)
    if kind is not None:
        return utc_ms(wall.replace(tzinfo=ZoneInfo("UTC")) - _OFFSET[kind])
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise ValueError("a time the clock shows twice, without (CET) or (CEST)")
    return utc_ms(first)


def _entsoe(path: Path, text: str, tz: ZoneInfo) -> list[tuple[int, int, float, int]]:
    rows = list(csv.reader(text.splitlines()))
    if not rows or not rows[0] or not rows[0][0].startswith("MTU"):
        raise InputError(f"{path} line 1: expected the ENTSO-E header 'MTU (CET/CEST),...'")
    found = []
    for n, row in enumerate(rows[1:], start=2):
        match = _MTU.match(row[0].strip()) if row else None
        if match is None:
            raise _bad(path, n, "MTU", row[0] if row else "", "expected 'dd.mm.yyyy HH:MM - ...'")
        start, end, kind = match.groups()
        if len(row) < 2 or row[1].strip() in ("", "-", "n/e"):
            continue  # ENTSO-E leaves a slot without a price empty: it stays missing
        try:
            a = _entsoe_time(start, kind, tz)
        except ValueError as err:
            raise _bad(path, n, "MTU", row[0], str(err)) from None
        # The end as a length: "01:00 - 02:00" on the day 02:00 repeats ends at the first.
        length = datetime.strptime(end, _MTU_TIME) - datetime.strptime(start, _MTU_TIME)
        b = a + length // timedelta(milliseconds=1)
        found.append((a, b, _price(path, n, row[1]), n))
    return found


def _awattar(path: Path, text: str) -> list[tuple[int, int, float, int]]:
    try:
        data = json.loads(text)["data"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f'{path}: expected aWATTar\'s JSON: {{"data": [...]}}') from None
    found = []
    for k, item in enumerate(data):
        try:
            a, b = int(item["start_timestamp"]), int(item["end_timestamp"])
            price = float(item["marketprice"])
        except (KeyError, TypeError, ValueError):
            raise _bad(path, k + 1, "data item", item, "needs start_timestamp, ...") from None
        found.append((a, b, price, k + 1))
    return found


def _finer(fmt: Format, apart_ms: int, minutes: int) -> str:
    """Why plain slots overlap when their starts are a quarter hour apart: quarter-hour
    prices (the day-ahead market's since 2025) read with the default hour slots."""
    if fmt != "plain" or apart_ms != QUARTER_MS or minutes == 15:
        return ""
    return (
        f": their starts are 15 minutes apart, each slot lasts --minutes {minutes}; "
        "for quarter-hour prices import with --minutes 15"
    )


def read_prices(path: Path, fmt: Format, tz: ZoneInfo, minutes: int = 60) -> PriceFile:
    """Read and check a price file: slots sorted, each ending after it starts, none
    overlapping (aWATTar's `line` in messages is the item's position in `data`)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    text = raw.decode("utf-8-sig")
    if fmt == "plain":
        found = _plain(path, text, minutes)
    elif fmt == "entsoe":
        found = _entsoe(path, text, tz)
    else:
        found = _awattar(path, text)
    if not found:
        raise InputError(f"{path}: no price slots")
    found.sort()
    for (a, b, _, n), (c, _, _, m) in itertools.pairwise(found):
        if c < b:
            raise InputError(
                f"{path} lines {n} and {m}: slots overlap{_finer(fmt, c - a, minutes)}"
            )
    for a, b, _, n in found:
        if b <= a:
            raise _bad(path, n, "slot", (a, b), "ends before it starts")
    slots = PriceSlots(
        np.array([f[0] for f in found], dtype=np.int64),
        np.array([f[1] for f in found], dtype=np.int64),
        np.array([f[2] for f in found], dtype=np.float64),
    )
    return PriceFile(path, hashlib.sha256(raw).hexdigest(), slots)
