"""Modbus-RTU master for the meter on the sensor's UART: CRC16, framing, timeouts.

Sans-I/O: `Exchange` is fed whatever bytes the UART has and told the time; it never
blocks, so the async poller in `app` (and the tests, on any platform) drive it the same way.
A transport failure (no answer, CRC error, garbled frame) and a device refusal (exception
reply) are different errors, counted separately.
"""

import binascii
import struct

READ_HOLDING = 0x03
READ_INPUT = 0x04
MAX_REGS = 125  # the Modbus limit per read request


class ModbusError(Exception):
    """A failed exchange; `kind`: timeout, crc, frame, exception (refused) or value (no number)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind + ": " + detail)
        self.kind = kind


def crc16(data: bytes) -> int:
    """Modbus CRC16 (polynomial 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    """The frame with its CRC appended."""
    crc = crc16(frame)
    return frame + bytes((crc & 0xFF, crc >> 8))


def read_request(addr: int, fc: int, start: int, count: int) -> bytes:
    """A read-registers request (function 3 or 4)."""
    if not 1 <= addr <= 247 or not 1 <= count <= MAX_REGS or fc not in (READ_HOLDING, READ_INPUT):
        raise ValueError(f"bad Modbus read: addr {addr} fc {fc} count {count}")
    return with_crc(struct.pack(">BBHH", addr, fc, start, count))


class Exchange:
    """One request/response exchange: feed() received bytes, poll() for the outcome."""

    def __init__(self, request: bytes, timeout_ms: int, started_ms: int) -> None:
        self.request = request
        self.addr = request[0]
        self.fc = request[1]
        self.count = (request[4] << 8) | request[5]
        self.deadline = started_ms + timeout_ms
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Append bytes received from the UART."""
        self._buf.extend(data)

    def _expected_len(self) -> int:
        buf = self._buf
        if len(buf) < 3:
            return 0
        if buf[1] == self.fc | 0x80:
            return 5  # addr, fc|0x80, exception code, crc
        return 5 + buf[2]

    def poll(self, now_ms: int) -> "list[int] | None":
        """The registers once the reply is complete; None while waiting; raises ModbusError."""
        need = self._expected_len()
        if need == 0 or len(self._buf) < need:
            if now_ms - self.deadline >= 0:
                raise ModbusError(
                    "timeout",
                    f"{len(self._buf)} of {need or '?'} bytes from device {self.addr}",
                )
            return None
        return self._parse(bytes(self._buf[:need]))

    def _parse(self, frame: bytes) -> "list[int]":
        n = len(frame)
        if crc16(frame[: n - 2]) != frame[n - 2] | (frame[n - 1] << 8):
            raise ModbusError("crc", f"bad CRC from device {self.addr}")
        if frame[0] != self.addr:
            raise ModbusError("frame", f"reply from device {frame[0]}, asked {self.addr}")
        if frame[1] == self.fc | 0x80:
            raise ModbusError("exception", f"device {self.addr} refused with code {frame[2]}")
        if frame[1] != self.fc or frame[2] != 2 * self.count:
            raise ModbusError(
                "frame",
                f"unexpected reply {binascii.hexlify(frame[:3]).decode()} from device {self.addr}",
            )
        return list(struct.unpack(f">{self.count}H", frame[3 : n - 2]))
