"""A hardware layer without hardware: for tests, and for hosting the firmware on a PC.

ADC pins replay sample arrays (synthetic waveforms), the UART is a simulated Modbus meter,
RTC memory is a bytes attribute that survives "soft resets" (build a new Sensor on the
same FakeHal), storage areas are files in a folder (or RAM), and time is manual (the
test advances now_ms) or comes from a clock function, e.g. the host's monotonic clock.
"""

import gc

from . import ntp
from .area import FileArea
from .hal import Area, Hal, Port, SpiDevice
from .mfrc522 import CASCADE_TAG, HLTA, SEL, WUPA, crc_a
from .modbus import READ_HOLDING, READ_INPUT, crc16, with_crc

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class FakeReset(Exception):
    """Raised by FakeHal.reset(): the firmware asked the chip to reset."""


class Samples:
    """One ADC pin replaying a sequence of raw samples, round and round."""

    def __init__(self, samples: "Sequence[int]") -> None:
        self.samples = samples
        self.i = 0

    def read(self) -> int:
        """The next sample (a bound method of this is the pin's reader)."""
        i = self.i
        s = self.samples
        v = s[i]
        i += 1
        self.i = 0 if i == len(s) else i
        return v


class MeterPort(Port):
    """A Modbus-RTU meter on a UART: answers read requests from its register table."""

    def __init__(self, addr: int, registers: "dict[int, int]") -> None:
        self.addr = addr
        self.registers = registers
        self.mode = "ok"  # ok | silent | bad_crc | exception | garbage
        self.requests = 0
        self._out = b""

    def write(self, data: bytes) -> None:
        """Receive a request; queue the meter's answer."""
        self.requests += 1
        frame = bytes(data)
        if (
            len(frame) != 8
            or crc16(frame[:6]) != frame[6] | (frame[7] << 8)
            or frame[0] != self.addr
        ):
            return  # a real meter stays silent on a frame that is not for it
        fc, start, count = frame[1], (frame[2] << 8) | frame[3], (frame[4] << 8) | frame[5]
        if self.mode == "silent":
            return
        if self.mode == "exception" or fc not in (READ_HOLDING, READ_INPUT):
            self._out = with_crc(bytes((self.addr, fc | 0x80, 2)))
            return
        data_ = bytearray((self.addr, fc, 2 * count))
        for reg in range(start, start + count):
            value = self.registers.get(reg, 0)
            data_.extend(bytes((value >> 8, value & 0xFF)))
        reply = with_crc(bytes(data_))
        if self.mode == "bad_crc":
            reply = reply[:-1] + bytes((reply[-1] ^ 0xFF,))
        elif self.mode == "garbage":
            reply = b"\x00\xff" + reply
        self._out = reply

    def readinto(self, buf: bytearray) -> int:
        """Hand out the queued answer (in one piece, as a UART FIFO would)."""
        n = min(len(buf), len(self._out))
        buf[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


class FakeMfrc522(SpiDevice):
    """An MFRC522 on SPI, register by register, with an ISO 14443-A card model in its field.

    Put a UID (4, 7 or 10 bytes) in `card` to lay a card on the reader, None to take it
    away; `cards = 2` makes two cards answer at once (a collision). The card follows the
    standard's states closely enough for a driver to be tested: REQA wakes only an idle
    card, WUPA a halted one too; select runs level by level with CRC_A checks.
    """

    def __init__(self) -> None:
        self.regs = bytearray(64)
        self.regs[0x37] = 0x92  # VersionReg: MFRC522 v2.0
        self.fifo: list[int] = []
        self.card: bytes | None = None
        self.cards = 1
        self.card_state = "idle"  # idle | ready | active | halt
        self._level = 0  # the cascade level the card is at while ready

    def transfer(self, out: bytearray, into: bytearray) -> None:
        """A register read (address bit 7 set) or write, as the chip decodes SPI bytes."""
        reg = (out[0] >> 1) & 0x3F
        into[0] = 0
        for i in range(1, len(out)):
            if out[0] & 0x80:
                into[i] = self.fifo.pop(0) if reg == 0x09 and self.fifo else self.regs[reg]
                if reg == 0x0A:
                    into[i] = len(self.fifo)
            else:
                self._write(reg, out[i])
                into[i] = 0

    def _write(self, reg: int, value: int) -> None:
        if reg == 0x09:
            self.fifo.append(value)
        elif reg == 0x0A and value & 0x80:
            self.fifo = []
        elif reg == 0x04:  # ComIrqReg: bit 7 says whether the other bits are set or cleared
            mask = value & 0x7F
            self.regs[4] = self.regs[4] | mask if value & 0x80 else self.regs[4] & ~mask
        elif reg == 0x0D and value & 0x80 and self.regs[1] == 0x0C:  # StartSend, Transceive
            self.regs[0x0D] = value
            self._air(bytes(self.fifo), value & 0x07)
        else:
            self.regs[reg] = value

    def _air(self, frame: bytes, last_bits: int) -> None:
        """What the card answers to one frame; the answer lands in the FIFO."""
        self.fifo = []
        self.regs[6] = 0
        if self.card is None:
            self.card_state = "idle"  # out of the field, the card has no power
        answer = None if self.card is None else self._card(frame, last_bits)
        if answer is None:
            self.regs[4] |= 0x01  # TimerIRq: no answer within the timeout
        else:
            self.fifo.extend(answer)
            self.regs[4] |= 0x30  # RxIRq | IdleIRq
            if self.cards > 1:
                self.regs[6] |= 0x08  # CollErr

    def _card(self, frame: bytes, last_bits: int) -> bytes | None:
        uid = self.card
        assert uid is not None
        # The UID's 4 bytes per cascade level; a cascade tag marks that more levels follow.
        tag = bytes((CASCADE_TAG,))
        if len(uid) == 4:
            parts: tuple[bytes, ...] = (uid,)
        elif len(uid) == 7:
            parts = (tag + uid[:3], uid[3:])
        else:
            parts = (tag + uid[:3], tag + uid[3:6], uid[6:])
        state = self.card_state
        if last_bits == 7 and len(frame) == 1:
            if frame[0] == WUPA or (frame[0] == 0x26 and state == "idle"):
                self.card_state, self._level = "ready", 0
                return bytes((0x44, 0x00))  # ATQA
            return None
        if state == "ready" and frame[:1] == bytes((SEL[self._level],)):
            part = parts[self._level]
            bcc = part[0] ^ part[1] ^ part[2] ^ part[3]
            if frame[1:2] == b"\x20":
                return part + bytes((bcc,))
            if frame[1:2] == b"\x70" and frame[2:7] == part + bytes((bcc,)):
                if crc_a(frame[:7]) != frame[7:]:
                    return None
                last = self._level == len(parts) - 1
                self._level += 1
                self.card_state = "active" if last else "ready"
                sak = bytes((0x08 if last else 0x04,))
                return sak + crc_a(sak)
        if frame[:2] == bytes((HLTA, 0)) and state == "active":
            self.card_state = "halt"
            return None
        self.card_state = "halt" if state == "halt" else "idle"
        return None


class MemArea(Area):
    """A storage area in RAM (for platforms or tests without a file system)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def read(self, offset: int, n: int) -> bytes:
        """Up to n bytes at offset."""
        return bytes(self.data[offset : offset + n])

    def write(self, offset: int, data: bytes) -> None:
        """Write at offset, growing the area with zeros as a file would."""
        end = offset + len(data)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data


class FakeHal(Hal):
    """The Hal contract in software; see the module docstring."""

    def __init__(
        self, folder: str | None = None, clock_ms: "Callable[[], int] | None" = None
    ) -> None:
        self.folder = folder
        self.clock_ms = clock_ms  # None: manual time, advanced by setting now_ms
        self.now_ms = 0
        self.pins: dict[int, Samples] = {}
        self.volts_per_count = 3.3 / 4095
        self.meter: MeterPort | None = None
        self.wifi = True
        self.ip = "127.0.0.1"
        self.rssi = -55
        self.utc_offset_ms: int | None = 1763805600000  # None: NTP does not answer
        self.rtc = b""
        self.cause = "power"
        self.wdt_timeout_ms = 0
        self.wdt_feeds = 0
        self.led_on = False
        self.button_down = False  # the job button, as a test holds it
        self.reader = FakeMfrc522()
        self.areas: dict[str, Area] = {}
        self.resets = 0
        self.ntp_queries = 0

    def ticks_ms(self) -> int:
        """Manual time, or the clock function's."""
        return self.now_ms if self.clock_ms is None else self.clock_ms()

    def ticks_diff(self, new: int, old: int) -> int:
        """Our ticks never wrap."""
        return new - old

    def adc_reader(self, pin: int) -> "Callable[[], int]":
        """The reader of a pin set up with set_samples (mid-scale silence otherwise)."""
        if pin not in self.pins:
            self.pins[pin] = Samples([2048])
        return self.pins[pin].read

    def set_samples(self, pin: int, samples: "Sequence[int]") -> None:
        """What the pin's ADC reads from now on."""
        if pin in self.pins:
            self.pins[pin].samples = samples
            self.pins[pin].i = 0
        else:
            self.pins[pin] = Samples(samples)

    def adc_volts_per_count(self, pin: int) -> float:
        """An ideal 12-bit ADC over 3.3 V."""
        return self.volts_per_count

    def uart(self, uart_id: int, tx: int, rx: int, baud: int) -> Port:
        """The simulated meter (set self.meter first)."""
        if self.meter is None:
            raise OSError("no meter attached to the fake UART")
        return self.meter

    def button(self, pin: int) -> "Callable[[], bool]":
        """Reads self.button_down."""
        return lambda: self.button_down

    def spi_device(
        self, bus: int, sck: int, mosi: int, miso: int, cs: int, rst: int | None
    ) -> SpiDevice:
        """The simulated card reader (self.reader)."""
        return self.reader

    def wifi_start(self, ssid: str, password: str, hostname: str) -> None:
        """Nothing to do: self.wifi says whether we are connected."""

    def wifi_ip(self) -> str | None:
        """self.ip while self.wifi is True."""
        return self.ip if self.wifi else None

    def wifi_rssi(self) -> int | None:
        """self.rssi while connected."""
        return self.rssi if self.wifi else None

    async def ntp_ms(self, host: str, timeout_ms: int) -> int | None:
        """A fixed UTC anchor plus the uptime, passed through a real SNTP reply parse."""
        self.ntp_queries += 1
        if self.utc_offset_ms is None or not self.wifi:
            return None
        utc = self.utc_offset_ms + self.ticks_ms()
        secs, ms = divmod(utc, 1000)
        reply = bytes((0x24, 2)) + bytes(38) + (secs + ntp.NTP_TO_UNIX_S).to_bytes(4, "big")
        return ntp.parse(reply + ((ms << 32) // 1000).to_bytes(4, "big"), 0)

    def wdt_start(self, timeout_ms: int) -> None:
        """Record the watchdog timeout."""
        self.wdt_timeout_ms = timeout_ms

    def wdt_feed(self) -> None:
        """Count the feeds."""
        self.wdt_feeds += 1

    def rtc_load(self) -> bytes:
        """RTC memory (lost by power_cut())."""
        return self.rtc

    def rtc_store(self, data: bytes) -> None:
        """Keep the RTC memory contents."""
        self.rtc = bytes(data)

    def power_cut(self) -> None:
        """What a power cut does to the chip's state: RTC memory is gone."""
        self.rtc = b""
        self.cause = "power"

    def area(self, name: str, size: int) -> Area:
        """A file in self.folder (or RAM without one); the same object on every call."""
        if name not in self.areas:
            self.areas[name] = (
                MemArea() if self.folder is None else FileArea(self.folder + "/" + name)
            )
        return self.areas[name]

    def reset(self) -> None:
        """Count the reset and raise FakeReset (the chip would restart here)."""
        self.resets += 1
        self.cause = "soft"
        raise FakeReset()

    def reset_cause(self) -> str:
        """What the test set (power unless reset() was called)."""
        return self.cause

    def mem_free(self) -> int | None:
        """gc.mem_free() under MicroPython, None under CPython."""
        gc.collect()
        mem_free = getattr(gc, "mem_free", None)
        return None if mem_free is None else int(mem_free())

    def led(self, on: bool) -> None:
        """Remember the LED state."""
        self.led_on = on

    def unique_id(self) -> str:
        """A fixed id."""
        return "a1b2c3"
