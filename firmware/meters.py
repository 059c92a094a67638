"""The meters a sensor can read over Modbus-RTU: reads and scaling from their register tables.

The tables (meter_maps.py) are generated from the gateway's register maps
(gateway/meters/*.toml), so the sensor and the gateway read a meter the same way; this
module turns one round of reads into the protocol's integer units (0.1 V, mA, 0.1 W, mWh).
"""

import math
import struct

from .meter_maps import MAPS
from .modbus import ModbusError

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from .meter_maps import Field, Read


class Values:
    """One meter read, in protocol units."""

    def __init__(self, dv: int, ma: int, dw: int, mwh: int) -> None:
        self.dv = dv  # RMS voltage, 0.1 V
        self.ma = ma  # RMS current, mA
        self.dw = dw  # active power, 0.1 W
        self.mwh = mwh  # the meter's import energy counter, mWh


def _number(regs: "list[list[int]]", field: "Field") -> int:
    """One field of a round of reads, in protocol units (integers stay exact integers)."""
    read, at, kind, order, factor = field
    r = regs[read]
    if kind == "uint16" or kind == "int16":
        raw: float = r[at] - (0x10000 if kind == "int16" and r[at] >= 0x8000 else 0)
    else:
        hi, lo = (r[at], r[at + 1]) if order == "big" else (r[at + 1], r[at])
        if kind == "float32":
            raw = struct.unpack(">f", struct.pack(">HH", hi, lo))[0]
            # NaN fails both comparisons: Eastron meters read NaN while they start up.
            if not -3e38 < raw < 3e38:
                raise ModbusError("value", "register " + str(at) + " holds no number")
        else:
            raw = (hi << 16) | lo
            if kind == "int32" and raw >= 0x80000000:
                raw -= 0x100000000
    x = raw * factor
    # An int times an int factor is exact; floats are rounded (the ESP32's are 32-bit).
    return x if isinstance(x, int) else math.floor(x + 0.5)


class Meter:
    """A meter model from its generated table: what to read, and how to scale it."""

    def __init__(self, model: str) -> None:
        self.reads, self.fields = MAPS[model]

    def requests(self) -> "tuple[Read, ...]":
        """(function, first register, count) of each read, in order."""
        return self.reads

    def decode(self, regs: "list[list[int]]") -> Values:
        """Scale the registers of one round of requests()."""
        f = self.fields
        return Values(
            _number(regs, f[0]), _number(regs, f[1]), _number(regs, f[2]), _number(regs, f[3])
        )
