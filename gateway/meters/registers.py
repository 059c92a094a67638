"""Register arithmetic for a map: group values into few reads, decode and encode registers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient

from gateway.meters.maps import Function, MeterMap, Value

# The conversions are class methods shared by every pymodbus client; no connection is used.
_CONVERT = ModbusTcpClient
_DATATYPE = {
    "float32": _CONVERT.DATATYPE.FLOAT32,
    "int32": _CONVERT.DATATYPE.INT32,
    "uint32": _CONVERT.DATATYPE.UINT32,
    "int16": _CONVERT.DATATYPE.INT16,
    "uint16": _CONVERT.DATATYPE.UINT16,
}


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read (FC03/FC04) covering one or more values."""

    function: Function
    address: int
    count: int
    values: tuple[Value, ...]


def plan_reads(meter_map: MeterMap, names: Iterable[str]) -> tuple[ReadRequest, ...]:
    """The fewest reads that cover `names` within the map's max_registers and max_gap."""
    wanted = sorted(
        (meter_map.values[n] for n in set(names)), key=lambda v: (v.function, v.address)
    )
    defined = {(v.function, r) for v in meter_map.value for r in range(v.address, v.end)}
    groups: list[list[Value]] = []
    for v in wanted:
        # Greedy left to right is optimal here: a read can only grow to the right.
        if groups and _fits(groups[-1], v, meter_map, defined):
            groups[-1].append(v)
        else:
            groups.append([v])
    return tuple(
        ReadRequest(g[0].function, g[0].address, g[-1].end - g[0].address, tuple(g)) for g in groups
    )


def _fits(group: list[Value], v: Value, m: MeterMap, defined: set[tuple[Function, int]]) -> bool:
    first, last = group[0], group[-1]
    if v.function != first.function or v.end - first.address > m.max_registers:
        return False
    undefined = sum((v.function, r) not in defined for r in range(last.end, v.address))
    return undefined <= m.max_gap


def decode(request: ReadRequest, registers: Sequence[int]) -> dict[str, float]:
    """Registers answered for `request` -> {value name: number in the value's unit}."""
    out: dict[str, float] = {}
    for v in request.values:
        offset = v.address - request.address
        raw = _CONVERT.convert_from_registers(
            list(registers[offset : offset + v.words]), _DATATYPE[v.type], word_order=v.word_order
        )
        assert isinstance(raw, int | float)  # one value of a numeric type, never a list
        out[v.name] = float(raw) * v.scale
    return out


def encode(v: Value, number: float) -> list[int]:
    """A number in the value's unit -> the registers a meter would hold (inverse of decode)."""
    raw = number / v.scale
    return _CONVERT.convert_to_registers(
        raw if v.type == "float32" else round(raw), _DATATYPE[v.type], word_order=v.word_order
    )
