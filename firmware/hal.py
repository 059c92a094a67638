"""The hardware layer's contract: everything the firmware asks of the chip, in one class.

`hal_esp32.Esp32Hal` implements it on the ESP32; `hal_fake.FakeHal` in tests and on a PC.
Firmware logic receives a Hal and never imports `machine` or `network` itself.
"""

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable


class Port:
    """A byte stream to a device (a UART): non-blocking reads, so polling never stalls."""

    def write(self, data: bytes) -> None:
        """Send all of `data`."""
        raise NotImplementedError

    def readinto(self, buf: bytearray) -> int:
        """Copy the bytes that have arrived (up to len(buf)) into buf; 0 when none."""
        raise NotImplementedError


class SpiDevice:
    """One chip on an SPI bus, selected (CS low) for the length of each transfer."""

    def transfer(self, out: bytearray, into: bytearray) -> None:
        """Clock out `out` while reading as many bytes into `into`."""
        raise NotImplementedError


class Area:
    """A fixed-size region of persistent storage (a file on littlefs)."""

    def read(self, offset: int, n: int) -> bytes:
        """Up to n bytes from offset; fewer (or none) past what was ever written."""
        raise NotImplementedError

    def write(self, offset: int, data: bytes) -> None:
        """Write data at offset and commit it before returning."""
        raise NotImplementedError


class Hal:
    """What the firmware needs from the hardware; every method is implemented per platform."""

    def ticks_ms(self) -> int:
        """A millisecond tick counter that may wrap (use ticks_diff)."""
        raise NotImplementedError

    def ticks_diff(self, new: int, old: int) -> int:
        """new - old in ms, correct across one wrap of the tick counter."""
        raise NotImplementedError

    def adc_reader(self, pin: int) -> "Callable[[], int]":
        """A function returning one raw 12-bit sample (0..4095) of an ADC1 pin."""
        raise NotImplementedError

    def adc_volts_per_count(self, pin: int) -> float:
        """Volts per raw ADC count on that pin (from the chip's eFuse calibration)."""
        raise NotImplementedError

    def uart(self, uart_id: int, tx: int, rx: int, baud: int) -> Port:
        """A serial port for the Modbus meter (8N1)."""
        raise NotImplementedError

    def button(self, pin: int) -> "Callable[[], bool]":
        """A function returning True while the push button from pin to GND is pressed
        (the pin's internal pull-up holds it high otherwise)."""
        raise NotImplementedError

    def spi_device(
        self, bus: int, sck: int, mosi: int, miso: int, cs: int, rst: int | None
    ) -> SpiDevice:
        """A chip on SPI bus 1 or 2 at 1 MHz, mode 0, with its chip select (and reset) pin."""
        raise NotImplementedError

    def wifi_start(self, ssid: str, password: str, hostname: str) -> None:
        """Begin connecting to Wi-Fi in the background (returns at once)."""
        raise NotImplementedError

    def wifi_ip(self) -> str | None:
        """The IPv4 address while connected, else None."""
        raise NotImplementedError

    def wifi_rssi(self) -> int | None:
        """RSSI in dBm while connected, else None."""
        raise NotImplementedError

    async def ntp_ms(self, host: str, timeout_ms: int) -> int | None:
        """UTC ms from one SNTP exchange with host, or None (no answer, bad answer)."""
        raise NotImplementedError

    def wdt_start(self, timeout_ms: int) -> None:
        """Arm the hardware watchdog: the chip resets unless fed within timeout_ms."""
        raise NotImplementedError

    def wdt_feed(self) -> None:
        """Feed the watchdog."""
        raise NotImplementedError

    def rtc_load(self) -> bytes:
        """The RTC memory (survives soft resets, not power cuts)."""
        raise NotImplementedError

    def rtc_store(self, data: bytes) -> None:
        """Replace the RTC memory contents."""
        raise NotImplementedError

    def area(self, name: str, size: int) -> Area:
        """A persistent storage area of `size` bytes, created on first use."""
        raise NotImplementedError

    def reset(self) -> None:
        """Reset the chip (does not return on the ESP32)."""
        raise NotImplementedError

    def reset_cause(self) -> str:
        """Why the chip started: power, watchdog, soft, deepsleep, hard, brownout, unknown."""
        raise NotImplementedError

    def mem_free(self) -> int | None:
        """Free heap bytes after a collection, or None where that means nothing."""
        raise NotImplementedError

    def led(self, on: bool) -> None:
        """Switch the status LED."""
        raise NotImplementedError

    def unique_id(self) -> str:
        """A stable hex id of this chip (the Wi-Fi MAC), for the default sensor id."""
        raise NotImplementedError
