# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""Modbus-RTU master: frames against the meters' datasheets, CRC errors, timeouts."""

import binascii
import struct

from firmware.hal_fake import MeterPort
from firmware.meters import Meter
from firmware.modbus import READ_INPUT, Exchange, ModbusError, crc16, read_request, with_crc


def _hex(s: str) -> bytes:
    return binascii.unhexlify(s.replace(" ", ""))


def _error(fn: "object", *args: object) -> str:
    try:
        fn(*args)  # type: ignore[operator]
    except ModbusError as err:
        return err.kind
    raise AssertionError("no ModbusError")


def test_requests_match_the_datasheet_frames() -> None:
    # PZEM-004T v3 manual, "read the measurement result": address 1, 10 input registers.
    assert read_request(1, READ_INPUT, 0x0000, 10) == _hex("01 04 00 00 00 0A 70 0D")
    # Eastron's protocol example: phase 1 voltage, 2 input registers from 0x0000.
    assert read_request(1, READ_INPUT, 0x0000, 2) == _hex("01 04 00 00 00 02 71 CB")


def test_crc_matches_published_frames() -> None:
    # PZEM-004T "reset energy" command for address 1: 01 42 + CRC 80 11.
    assert with_crc(_hex("01 42")) == _hex("01 42 80 11")
    # Eastron's reply to the request above: 230.2 V as an IEEE 754 float, CRC 1B 38.
    assert with_crc(_hex("01 04 04 43 66 33 34")) == _hex("01 04 04 43 66 33 34 1B 38")
    # A published reply of another meter's manual (3 floats, CRC AF 7C).
    frame = _hex("01 04 0C 43 6B 5A B4 42 DC 67 20 42 48 0C 63 AF 7C")
    assert crc16(frame[:-2]) == frame[-2] | (frame[-1] << 8)


def test_reply_is_parsed_into_registers() -> None:
    ex = Exchange(_hex("01 04 00 00 00 02 71 CB"), 100, 0)
    assert ex.poll(10) is None  # nothing yet, not late yet
    ex.feed(_hex("01 04 04 43"))
    assert ex.poll(20) is None  # half a frame
    ex.feed(_hex("66 33 34 1B 38"))
    regs = ex.poll(30)
    assert regs == [0x4366, 0x3334]
    volts = struct.unpack(">f", struct.pack(">HH", *regs))[0]
    assert abs(volts - 230.2) < 1e-4


def test_crc_error_exception_reply_and_wrong_device_are_told_apart() -> None:
    ex = Exchange(read_request(1, READ_INPUT, 0, 2), 100, 0)
    ex.feed(_hex("01 04 04 43 66 33 34 1B 39"))
    assert _error(ex.poll, 10) == "crc"
    ex = Exchange(read_request(1, READ_INPUT, 0, 2), 100, 0)
    ex.feed(with_crc(_hex("01 84 02")))  # illegal data address
    assert _error(ex.poll, 10) == "exception"
    ex = Exchange(read_request(1, READ_INPUT, 0, 2), 100, 0)
    ex.feed(with_crc(_hex("02 04 04 43 66 33 34")))
    assert _error(ex.poll, 10) == "frame"


def test_silence_and_a_truncated_reply_time_out() -> None:
    ex = Exchange(read_request(1, READ_INPUT, 0, 10), 300, 1000)
    assert ex.poll(1299) is None
    assert _error(ex.poll, 1300) == "timeout"
    ex = Exchange(read_request(1, READ_INPUT, 0, 10), 300, 1000)
    ex.feed(_hex("01 04 14 08 98"))
    assert _error(ex.poll, 1400) == "timeout"


def _exchange(port: MeterPort, request: bytes) -> "list[int]":
    port.write(request)
    buf = bytearray(64)
    ex = Exchange(request, 100, 0)
    n = port.readinto(buf)
    ex.feed(bytes(buf[:n]))
    regs = ex.poll(200)
    assert regs is not None
    return regs


def test_pzem_registers_scale_exactly() -> None:
    # 229.6 V, 12.345 A (32-bit, low word first), 2790.5 W, 70311 Wh, 50.0 Hz, PF 0.98.
    regs = {0: 2296, 1: 12345, 2: 0, 3: 27905, 4: 0, 5: 4775, 6: 1, 7: 500, 8: 98, 9: 0}
    port = MeterPort(1, regs)
    meter = Meter("pzem004t")
    got = [
        _exchange(port, read_request(1, fc, start, count)) for fc, start, count in meter.requests()
    ]
    v = meter.decode(got)
    assert (v.dv, v.ma, v.dw, v.mwh) == (2296, 12345, 27905, (1 << 16 | 4775) * 1000)


def test_sdm120_floats_scale_to_protocol_units() -> None:
    def f32(x: float) -> "tuple[int, int]":
        hi, lo = struct.unpack(">HH", struct.pack(">f", x))
        return hi, lo

    regs = {}
    for addr, value in ((0x0000, 230.2), (0x0006, 4.5), (0x000C, 1012.5), (0x0048, 1234.5)):
        regs[addr], regs[addr + 1] = f32(value)
    port = MeterPort(7, regs)
    meter = Meter("sdm120")
    got = [
        _exchange(port, read_request(7, fc, start, count)) for fc, start, count in meter.requests()
    ]
    v = meter.decode(got)
    assert (v.dv, v.ma, v.dw, v.mwh) == (2302, 4500, 10125, 1234500000)


def test_bad_requests_are_refused_before_they_reach_the_bus() -> None:
    for args in ((0, 4, 0, 1), (1, 4, 0, 126), (1, 6, 0, 1)):
        try:
            read_request(*args)
        except ValueError:
            continue
        raise AssertionError(f"accepted {args}")


def test_a_meter_reading_nan_while_it_starts_is_a_failed_poll_not_a_crash() -> None:
    regs = {0x0006: 0x7FC0}  # current: a quiet NaN; the rest 0.0
    port = MeterPort(7, regs)
    meter = Meter("sdm120")
    got = [
        _exchange(port, read_request(7, fc, start, count)) for fc, start, count in meter.requests()
    ]
    try:
        meter.decode(got)
    except ModbusError as err:
        assert err.kind == "value"
    else:
        raise AssertionError("NaN accepted")
