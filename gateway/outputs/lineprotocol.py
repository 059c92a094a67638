"""InfluxDB line protocol: escaping and formatting, pure and portable (1.x, 2.x, 3.x).

`measurement,tag=v,... field=v,... <ms>`: tags sorted by key (InfluxDB's canonical
series key, which makes writes cheaper), timestamps in integer milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from gateway.engine.model import F64, I64

FieldValue = float | int | bool | str

# Backslash escapes per element, from the line protocol reference. Measurement names may
# contain '=' unescaped; tag keys/values and field keys may not.
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": " ", "\r": " "})


def escape_measurement(name: str) -> str:
    """A measurement name with commas and spaces escaped."""
    _check_name("measurement", name)
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """A tag key, tag value or field key with commas, equals signs and spaces escaped."""
    _check_name("tag or field key/value", text)
    return text.translate(_TAG)


def _check_name(what: str, text: str) -> None:
    # Neither can travel in line protocol: a newline ends the line, and a trailing
    # backslash would escape the separator after it. Ids from shop.toml never contain
    # them, so meeting one is a bug upstream, not a user error.
    if not text or "\n" in text or "\r" in text or text.endswith("\\"):
        raise ValueError(f"line protocol cannot carry the {what} {text!r}")


def quote_string(value: str) -> str:
    """A string field value: quoted, with backslashes and quotes escaped.

    Newlines become spaces: InfluxDB 1.x accepts them inside quotes, but the 2.x/3.x
    line protocol does not, and a customer name never needs one.
    """
    return '"' + value.translate(_STRING) + '"'


def format_field(value: FieldValue | np.integer[Any] | np.bool_) -> str | None:
    """A field value in line protocol; None for NaN/inf, which InfluxDB cannot store."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return f"{int(value)}i"
    if isinstance(value, str):
        return quote_string(value)
    f = float(value)
    # float.__repr__ is the shortest string that reads back to the same float.
    return repr(f) if np.isfinite(f) else None


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`measurement,k=v,...` with tags sorted by key; empty tag values are left out."""
    parts = [escape_measurement(measurement)]
    parts += [f"{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v != ""]
    return ",".join(parts)


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], t_ms: int
) -> str | None:
    """One point; fields that cannot be stored (NaN) are left out, None if none is left."""
    formatted = ((k, format_field(v)) for k, v in fields.items())
    field_set = ",".join(f"{escape_key(k)}={v}" for k, v in formatted if v is not None)
    if not field_set:
        return None
    return f"{series_key(measurement, tags)} {field_set} {int(t_ms)}"


def float_lines(key: str | Sequence[str], t_ms: I64, columns: Mapping[str, F64]) -> list[str]:
    """Lines from float columns, of one series (`key`) or one per row; a NaN leaves its
    field out of that line.

    Rows are grouped by which fields they carry (few patterns: usually one), so each
    group is formatted with one template and no per-value test; rows with no finite
    value at all are skipped. The result is in row order.
    """
    names = [escape_key(k) for k in columns]
    values = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns.values()])
    pattern = np.isfinite(values) @ (1 << np.arange(len(names), dtype=np.int64))
    carried = pattern > 0
    keys = None if isinstance(key, str) else np.asarray(key, dtype=object)
    out = np.empty(len(pattern), dtype=object)
    for p in np.unique(pattern[carried]).tolist():
        rows = np.flatnonzero(pattern == p)
        cols = [c for c in range(len(names)) if p >> c & 1]
        template = "{} " + ",".join(f"{names[c]}={{}}" for c in cols) + " {}"
        vals = values[rows][:, cols].tolist()
        times = np.asarray(t_ms)[rows].tolist()
        # One key for all rows (a sensor's readings) or each row's own (a batch of many).
        row_keys = repeat(key) if keys is None else keys[rows].tolist()
        out[rows] = [
            template.format(k, *map(repr, v), t)
            for k, v, t in zip(row_keys, vals, times, strict=False)
        ]
    lines: list[str] = out[carried].tolist()
    return lines
