"""Register maps and scaling of the meters a sensor can read over Modbus-RTU.

Each meter: the read requests to send and a decoder from their registers to the protocol's
integer units (0.1 V, mA, 0.1 W, mWh). Addresses from the datasheets (docs/firmware.md
lists what was checked): PZEM-004T v3 input registers 0x0000.. (32-bit values low word
first, fixed-point); Eastron SDM120 input registers as IEEE 754 floats, high word first.
"""

import math
import struct

from .modbus import READ_INPUT


def _u32_lo_first(lo: int, hi: int) -> int:
    return (hi << 16) | lo


def _f32_hi_first(hi: int, lo: int) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", hi, lo))[0])


def _round(x: float) -> int:
    return math.floor(x + 0.5)


class Values:
    """One meter read, in protocol units."""

    def __init__(self, dv: int, ma: int, dw: int, mwh: int) -> None:
        self.dv = dv  # RMS voltage, 0.1 V
        self.ma = ma  # RMS current, mA
        self.dw = dw  # active power, 0.1 W
        self.mwh = mwh  # the meter's import energy counter, mWh


class Meter:
    """A meter model: what to read, and how to scale it."""

    def requests(self) -> "list[tuple[int, int, int]]":
        """(function, first register, count) of each read, in order."""
        raise NotImplementedError

    def decode(self, regs: "list[list[int]]") -> Values:
        """Scale the registers of one round of requests()."""
        raise NotImplementedError


class Pzem004t(Meter):
    """PZEM-004T v3: one read of 10 input registers; energy wraps at 9999.99 kWh."""

    def requests(self) -> "list[tuple[int, int, int]]":
        """(function, first register, count) of each read, in order."""
        return [(READ_INPUT, 0x0000, 10)]

    def decode(self, regs: "list[list[int]]") -> Values:
        """Scale the registers of one round of requests()."""
        r = regs[0]
        # 0.1 V; 0.001 A; 0.1 W; 1 Wh: the meter's units are already ours, exactly.
        return Values(
            r[0],
            _u32_lo_first(r[1], r[2]),
            _u32_lo_first(r[3], r[4]),
            1000 * _u32_lo_first(r[5], r[6]),
        )


class Sdm120(Meter):
    """Eastron SDM120-Modbus: floats; V 0x0000, A 0x0006, W 0x000C, import kWh 0x0048."""

    def requests(self) -> "list[tuple[int, int, int]]":
        """(function, first register, count) of each read, in order."""
        return [(READ_INPUT, 0x0000, 14), (READ_INPUT, 0x0048, 2)]

    def decode(self, regs: "list[list[int]]") -> Values:
        """Scale the registers of one round of requests()."""
        a, b = regs
        volts = _f32_hi_first(a[0], a[1])
        amps = _f32_hi_first(a[6], a[7])
        watts = _f32_hi_first(a[12], a[13])
        kwh = _f32_hi_first(b[0], b[1])
        return Values(
            _round(volts * 10), _round(amps * 1000), _round(watts * 10), _round(kwh * 1000000)
        )


METERS: "dict[str, type[Meter]]" = {"pzem004t": Pzem004t, "sdm120": Sdm120}
