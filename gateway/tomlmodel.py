"""TOML data files into pydantic models; every error names the file, key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _key(loc: tuple[int | str, ...], data: Any) -> str:
    """('machine', 0, 'cost', 'salvage') -> 'machine[0] (id=cnc-01).cost.salvage'."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id") or node.get("name"), str):
                label += f" ({'id' if 'id' in node else 'name'}={node.get('id') or node['name']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def describe_validation_error(err: ValidationError, data: Any, source: Path) -> str:
    """One line per problem: 'file: key = value: what is wrong'."""
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        where = _key(tuple(e["loc"]), data)
        if e["type"] == "missing":
            lines.append(f"{source}: {where}: required key is missing")
        elif e["type"] == "extra_forbidden":
            lines.append(f"{source}: {where}: unknown key (check the spelling)")
        elif isinstance(e["input"], dict | list):
            # A whole-section rule (e.g. salvage <= purchase): the message names the values.
            lines.append(f"{source}: {where}: {msg}")
        else:
            lines.append(f"{source}: {where} = {e['input']!r}: {msg}")
    return "\n".join(lines)


def read_toml(path: Path, what: str = "file") -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error is a ConfigError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def validate_model(model: type[M], data: dict[str, Any], source: Path) -> M:
    """Validate parsed TOML against `model`; raises ConfigError naming file, key and value."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, data, source)) from None


def load_toml_model(path: Path, model: type[M], what: str = "file") -> M:
    """Read and validate one TOML data file."""
    return validate_model(model, read_toml(path, what), path)
