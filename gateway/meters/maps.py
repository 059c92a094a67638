"""Register map files (gateway/meters/<model>.toml): schema, defaults and loader."""

from __future__ import annotations

import math
from functools import cache, cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.tomlmodel import load_toml_model

MAPS_DIR = Path(__file__).parent

Function = Literal["input", "holding"]  # FC04 read input registers / FC03 read holding registers
RegType = Literal["float32", "int32", "uint32", "int16", "uint16"]
WordOrder = Literal["big", "little"]  # big: high word first (Eastron); little: low word first

WORDS: dict[str, int] = {"float32": 2, "int32": 2, "uint32": 2, "int16": 1, "uint16": 1}
# Readings carry W and Wh; a map may state either unit of each.
POWER_UNITS: dict[str, float] = {"W": 1.0, "kW": 1000.0}
ENERGY_UNITS: dict[str, float] = {"Wh": 1.0, "kWh": 1000.0}
MAX_PDU_REGISTERS = 125  # Modbus limit for one read (FC03/FC04)

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Address = Annotated[int, Field(ge=0, le=0xFFFF)]


class _Strict(BaseModel):
    # A misspelt key in a map would silently fall back to a default: refuse it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """[defaults]: keys every [[value]] inherits unless it sets them itself."""

    function: Function = "input"
    type: RegType = "float32"
    word_order: WordOrder = "big"
    scale: float = 1.0
    unit: str = ""
    kind: Literal["measurement", "counter"] = "measurement"


class Value(_Strict):
    """[[value]]: one quantity the meter exposes, and how to decode it."""

    name: Name
    address: Address  # protocol (0-based) address, as datasheets print it in hex
    function: Function = "input"
    type: RegType = "float32"
    word_order: WordOrder = "big"
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0  # raw * scale = value in `unit`
    unit: str = ""
    kind: Literal["measurement", "counter"] = "measurement"
    # Counters only: the meter counts modulo this value (in `unit`) and restarts from 0.
    wrap: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    # Counters only: the smallest step the counter makes, in `unit`. An integer register
    # steps by one count (`scale`, the default); a float register must say, since its
    # encoding does not (Eastron: 0.01 kWh).
    resolution: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Value:
        if self.scale == 0:
            raise ValueError(f"value '{self.name}': scale must not be 0")
        for key in ("wrap", "resolution"):
            if getattr(self, key) is not None and self.kind != "counter":
                raise ValueError(
                    f"value '{self.name}': {key} is only meaningful for kind = 'counter'"
                )
        if self.kind == "counter" and self.type == "float32" and self.resolution is None:
            raise ValueError(
                f"value '{self.name}': a float32 counter needs resolution "
                f"(its smallest step, in {self.unit or 'its unit'})"
            )
        if self.address + self.words > 0x10000:
            raise ValueError(
                f"value '{self.name}': {self.type} at {self.address:#06x} ends past 0xffff"
            )
        return self

    @property
    def words(self) -> int:
        """Registers the value occupies."""
        return WORDS[self.type]

    @property
    def end(self) -> int:
        """First address after the value."""
        return self.address + self.words

    def accepts(self, number: float) -> bool:
        """A decoded number is plausible: finite, and a counter within [0, wrap)."""
        if not math.isfinite(number):
            return False  # Eastron floats read NaN while the meter is still starting up
        if self.kind == "counter":
            return number >= 0 and (self.wrap is None or number < self.wrap)
        return True


class MeterMap(_Strict):
    """A whole map file: the meter's values and how it wants to be read."""

    description: str
    max_registers: Annotated[int, Field(ge=1, le=MAX_PDU_REGISTERS)]  # per request
    # Consecutive registers the map does not define that one request may span (0: the
    # meter answers undefined addresses with an exception, so requests must not cover them).
    max_gap: Annotated[int, Field(ge=0)] = 0
    defaults: Defaults = Defaults()
    power: Name  # the value readings take active power from (W or kW)
    energy: Name  # the import energy counter readings take energy from (Wh or kWh)
    value: Annotated[list[Value], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and isinstance(data.get("value"), list)):
            return data
        try:
            inherited = Defaults.model_validate(data.get("defaults", {}))
        except ValidationError:
            return data  # reported once, at `defaults`, when that field is validated
        base = inherited.model_dump(exclude_unset=True)
        values = [{**base, **v} if isinstance(v, dict) else v for v in data["value"]]
        return {**data, "value": values}

    @model_validator(mode="after")
    def _consistent(self) -> MeterMap:
        names = [v.name for v in self.value]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"value names must be unique, repeated: {dup}")
        ordered = sorted(self.value, key=lambda v: (v.function, v.address))
        for a, b in pairwise(ordered):
            if a.function == b.function and b.address < a.end:
                raise ValueError(f"values '{a.name}' and '{b.name}' overlap at {b.address:#06x}")
        for role, units, kind in (
            ("power", POWER_UNITS, "measurement"),
            ("energy", ENERGY_UNITS, "counter"),
        ):
            name = getattr(self, role)
            v = self.values.get(name)
            if v is None:
                raise ValueError(f"{role} = '{name}' names no [[value]]")
            if v.unit not in units or v.kind != kind:
                raise ValueError(
                    f"{role} value '{name}' must be a {kind} in {sorted(units)}, "
                    f"not a {v.kind} in {v.unit!r}"
                )
        if (widest := max(v.words for v in self.value)) > self.max_registers:
            raise ValueError(f"max_registers ({self.max_registers}) is below a {widest}-word value")
        return self

    @cached_property
    def values(self) -> dict[str, Value]:
        """Values by name, in file order."""
        return {v.name: v for v in self.value}

    @property
    def watts_per_unit(self) -> float:
        """Factor from the power value's unit to W."""
        return POWER_UNITS[self.values[self.power].unit]

    @property
    def wh_per_unit(self) -> float:
        """Factor from the energy value's unit to Wh (1000 for the usual kWh registers)."""
        return ENERGY_UNITS[self.values[self.energy].unit]

    @property
    def counter_resolution_wh(self) -> float:
        """The smallest step of the energy counter, in Wh (100 for an EM24's 0.1 kWh)."""
        v = self.values[self.energy]
        return (abs(v.scale) if v.resolution is None else v.resolution) * self.wh_per_unit


def available_models() -> list[str]:
    """Names of the maps shipped with shopwatt (the `model` values that need no path)."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.toml"))


def map_path(model: str, base: Path) -> Path:
    """A shipped model name -> its file; anything ending in .toml is a path relative to base."""
    if model.endswith(".toml"):
        p = Path(model).expanduser()
        return p if p.is_absolute() else base / p
    return MAPS_DIR / f"{model}.toml"


@cache
def load_map(path: Path) -> MeterMap:
    """Read and validate a map file; raises ConfigError naming the file, key and value."""
    return load_toml_model(path, MeterMap, "meter map file")
