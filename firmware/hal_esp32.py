"""The hardware layer on an ESP32 running MicroPython (the only module importing machine)."""

import asyncio
import binascii
import gc
import socket
import time

import machine
import network

from . import ntp
from .area import FileArea
from .hal import Area, Hal, Port, SpiDevice

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable

# 11 dB attenuation reads about 0..3.3 V at 12 bits. The channel gain from calibration
# against a known load absorbs the chip-to-chip error of this nominal slope.
_VOLTS_PER_COUNT = 3.3 / 4095
_CAUSES = {
    machine.PWRON_RESET: "power",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deepsleep",
    machine.SOFT_RESET: "soft",
}


class UartPort(Port):
    """A UART in non-blocking mode."""

    def __init__(self, uart: machine.UART) -> None:
        self._uart = uart

    def write(self, data: bytes) -> None:
        """Queue data for transmission (the driver's TX buffer sends it)."""
        self._uart.write(data)

    def readinto(self, buf: bytearray) -> int:
        """Bytes waiting in the RX buffer, 0 if none (the driver returns None then)."""
        return self._uart.readinto(buf) or 0


class Esp32Spi(SpiDevice):
    """A device on a hardware SPI bus with its own chip-select pin."""

    def __init__(self, spi: machine.SPI, cs: machine.Pin) -> None:
        self._spi = spi
        self._cs = cs

    def transfer(self, out: bytearray, into: bytearray) -> None:
        """One transaction with CS held low."""
        self._cs.value(0)
        try:
            self._spi.write_readinto(out, into)
        finally:
            self._cs.value(1)


class Esp32Hal(Hal):
    """machine / network on the chip."""

    def __init__(self, led_pin: int | None) -> None:
        self._wlan = network.WLAN(network.STA_IF)
        self._wdt: machine.WDT | None = None
        self._rtc = machine.RTC()
        self._led = None if led_pin is None else machine.Pin(led_pin, machine.Pin.OUT)

    def ticks_ms(self) -> int:
        """time.ticks_ms (wraps after 2**30 ms)."""
        return time.ticks_ms()  # type: ignore[return-value]  # an opaque int in the stubs

    def ticks_diff(self, new: int, old: int) -> int:
        """time.ticks_diff."""
        return time.ticks_diff(new, old)

    def adc_reader(self, pin: int) -> "Callable[[], int]":
        """ADC1 at 11 dB, 12 bits: the bound read() method, called once per sample."""
        adc = machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_11DB)
        adc.width(machine.ADC.WIDTH_12BIT)
        return adc.read

    def adc_volts_per_count(self, pin: int) -> float:
        """The nominal slope (see _VOLTS_PER_COUNT)."""
        return _VOLTS_PER_COUNT

    def uart(self, uart_id: int, tx: int, rx: int, baud: int) -> Port:
        """8N1 at baud; timeout 0 so reads never block the event loop."""
        return UartPort(machine.UART(uart_id, baudrate=baud, tx=tx, rx=rx, timeout=0))

    def button(self, pin: int) -> "Callable[[], bool]":
        """An input with the internal pull-up: the button pulls it to GND when pressed."""
        p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        return lambda: p.value() == 0

    def spi_device(
        self, bus: int, sck: int, mosi: int, miso: int, cs: int, rst: int | None
    ) -> SpiDevice:
        """Hardware SPI `bus`; the reset pin (if wired) is held high: chip running."""
        if rst is not None:
            machine.Pin(rst, machine.Pin.OUT, value=1)
        spi = machine.SPI(
            bus,
            baudrate=1_000_000,
            polarity=0,
            phase=0,
            sck=machine.Pin(sck),
            mosi=machine.Pin(mosi),
            miso=machine.Pin(miso),
        )
        return Esp32Spi(spi, machine.Pin(cs, machine.Pin.OUT, value=1))

    def wifi_start(self, ssid: str, password: str, hostname: str) -> None:
        """Start connecting; the driver keeps trying in the background."""
        self._wlan.active(True)
        try:  # noqa: SIM105 - MicroPython has no contextlib
            network.hostname(hostname)
        except (AttributeError, ValueError, OSError):
            pass  # older firmware without network.hostname(): keep the default name
        if not self._wlan.isconnected():
            self._wlan.connect(ssid, password)

    def wifi_ip(self) -> str | None:
        """The station address while connected."""
        if not self._wlan.isconnected():
            return None
        return str(self._wlan.ifconfig()[0])

    def wifi_rssi(self) -> int | None:
        """RSSI while connected."""
        if not self._wlan.isconnected():
            return None
        try:
            return int(self._wlan.status("rssi"))
        except (OSError, ValueError):
            return None

    async def ntp_ms(self, host: str, timeout_ms: int) -> int | None:
        """SNTP over a non-blocking UDP socket, polled so the event loop keeps running."""
        try:
            # getaddrinfo blocks while it resolves: use an IP address for ntp.host where
            # the DNS server is slow (docs/firmware.md).
            addr = socket.getaddrinfo(host, 123)[0][-1]
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            sock.setblocking(False)
            sent = time.ticks_ms()
            sock.sendto(ntp.request(), addr)
            while time.ticks_diff(time.ticks_ms(), sent) < timeout_ms:
                try:
                    reply = sock.recv(48)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                return ntp.parse(reply, time.ticks_diff(time.ticks_ms(), sent))
            return None
        finally:
            sock.close()

    def wdt_start(self, timeout_ms: int) -> None:
        """Arm the hardware watchdog (it cannot be stopped again)."""
        self._wdt = machine.WDT(timeout=timeout_ms)

    def wdt_feed(self) -> None:
        """Feed it."""
        if self._wdt is not None:
            self._wdt.feed()

    def rtc_load(self) -> bytes:
        """RTC slow memory (kept across soft resets and the watchdog)."""
        return bytes(self._rtc.memory())

    def rtc_store(self, data: bytes) -> None:
        """Replace the RTC memory."""
        self._rtc.memory(data)

    def area(self, name: str, size: int) -> Area:
        """A file at the root of the littlefs partition."""
        return FileArea("/" + name)

    def reset(self) -> None:
        """Hard reset of the chip."""
        machine.reset()

    def reset_cause(self) -> str:
        """machine.reset_cause() in protocol words."""
        return _CAUSES.get(machine.reset_cause(), "unknown")

    def mem_free(self) -> int | None:
        """Free heap right after a collection."""
        gc.collect()
        return gc.mem_free()

    def led(self, on: bool) -> None:
        """The on-board LED."""
        if self._led is not None:
            self._led.value(1 if on else 0)

    def unique_id(self) -> str:
        """Last 3 bytes of the MAC, in hex."""
        return binascii.hexlify(machine.unique_id()).decode()[-6:]
