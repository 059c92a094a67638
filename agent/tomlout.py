"""Write plain data as TOML (tables, arrays of tables, scalars, lists of scalars)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)  # repr round-trips floats; inf/nan never reach here (validated)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value")


def _table(doc: Mapping[str, Any], prefix: str) -> list[str]:
    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    lines = [
        f"{k} = {_value(v)}" for k, v in doc.items() if not (isinstance(v, Mapping) or is_tables(v))
    ]
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            lines += ["", f"[{name}]", *_table(v, name + ".")]
        elif is_tables(v):
            for item in v:
                lines += ["", f"[[{name}]]", *_table(item, name + ".")]
    return lines


def dumps(doc: Mapping[str, Any]) -> str:
    """TOML text for a document whose keys are bare-key safe (letters, digits, '_', '-')."""
    return "\n".join(_table(doc, "")).lstrip("\n") + "\n"
