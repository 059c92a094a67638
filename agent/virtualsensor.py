"""A shopwatt sensor without hardware: the firmware's own `Sensor` on a simulated HAL.

Everything a real sensor decides is the firmware's code: RMS and real power from the raw
samples (`rms.burst`, `power.finish`), the exact energy counters, the encoder, the boot
counter and per-boot sequence numbers, the RTC/flash state record, the offline ring and
the outbox. The agent only plays the hardware: it feeds ADC samples (agent.waveform),
sets the clock, switches Wi-Fi, cuts the power and resets the chip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agent.power import I8
from agent.profile import Profile
from agent.waveform import VOLTS_PER_VOLT, FrontEnd, Waveforms
from firmware import config as fwconfig
from firmware.app import Sensor, open_sensor
from firmware.hal_fake import FakeHal
from firmware.rms import burst
from gateway.engine.model import F64

CT_PIN = 36  # ADC1 pins (ADC2 is unusable with Wi-Fi on); any two of firmware.config's
V_PIN = 39


class SimHal(FakeHal):
    """The firmware's fake HAL, with time set by the agent and no heap to report."""

    def mem_free(self) -> int | None:
        """Unknown: a simulated sensor reports `h: null` (and skips FakeHal's gc.collect)."""
        return None


def firmware_config(
    site: str, machine: str, sensor: str, window_ms: int, front: FrontEnd, broker: str
) -> fwconfig.Config:
    """The sensor's config.json as an installer would write it for this clamp and module."""
    doc = {
        "site": site,
        "machine": machine,
        "sensor": sensor,
        "wifi": {"ssid": "virtual-shop"},
        "mqtt": {"host": broker},
        "window_ms": window_ms,
        "voltage": {"pin": V_PIN, "volts_per_volt": VOLTS_PER_VOLT},
        "channels": [{"name": "ct1", "pin": CT_PIN, "amps_per_volt": front.amps_per_volt}],
    }
    return fwconfig.parse([("agent", json.dumps(doc))], sensor)


class VirtualSensor:
    """One simulated sensor; every call passes the simulated UTC time in ms."""

    def __init__(
        self,
        cfg: fwconfig.Config,
        profile: Profile,
        front: FrontEnd,
        rng: np.random.Generator,
        flash_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.front = front
        self.waves = Waveforms(profile, front)
        self.rng = rng
        # Flash (state record, offline ring) in files survives the agent: the next run is
        # the next boot, as for a real sensor that was switched off. None: flash in RAM.
        if flash_dir is not None:
            flash_dir.mkdir(parents=True, exist_ok=True)
        self.hal = SimHal(None if flash_dir is None else str(flash_dir))
        self.hal.utc_offset_ms = None  # the agent sets the clock itself (sync_clock)
        self.fw: Sensor | None = None  # None while the sensor has no power
        self.boot_ms = 0  # simulated UTC ms at which the current boot started
        self.windows = 0  # readings produced, all boots

    @property
    def powered(self) -> bool:
        """True while the sensor runs."""
        return self.fw is not None

    def _now(self, sim_ms: int) -> Sensor:
        """The running firmware, its clock moved to sim_ms."""
        assert self.fw is not None, "the sensor has no power"
        self.hal.now_ms = sim_ms - self.boot_ms
        return self.fw

    def power_on(self, sim_ms: int) -> None:
        """Boot: the firmware restores its counters and ring, and counts the boot."""
        self.boot_ms = sim_ms
        self.hal.now_ms = 0
        self.fw = open_sensor(self.hal, self.cfg)
        self.fw.start()
        if self.hal.wifi:
            self.sync_clock(sim_ms)

    def power_cut(self) -> None:
        """Power gone: RTC memory is lost, flash and the ring survive."""
        self.hal.power_cut()
        self.fw = None

    def soft_reset(self, sim_ms: int) -> None:
        """A reset with power kept (the `reboot` command): counters continue from RTC."""
        self.hal.cause = "soft"
        self.power_on(sim_ms)

    def set_wifi(self, up: bool, sim_ms: int) -> None:
        """Wi-Fi comes or goes; the first connection of a boot syncs the clock (SNTP)."""
        self.hal.wifi = up
        if up and self.fw is not None and self.fw.clock.syncs == 0:
            self.sync_clock(sim_ms)

    def sync_clock(self, sim_ms: int) -> None:
        """An SNTP answer: the simulated UTC is the true time."""
        self._now(sim_ms).clock.sync(sim_ms)

    def measure(self, sim_ms: int, watts: F64, state: I8) -> bytes:
        """Close the window ending at sim_ms: one burst per entry of watts/state."""
        fw = self._now(sim_ms)
        v, i = self.waves.window(watts, state, self.rng)
        # The ADC readers are the samples' iterators (builtin calls, no Python frame per
        # sample); burst() takes readers from its caller, as Sensor.sample() does.
        burst(fw.sums, (iter(i).__next__,), iter(v).__next__, len(v))
        self.windows += 1
        return fw.close_window(self.cfg.window_ms, fw.clock.uptime())

    def status(self, sim_ms: int) -> bytes:
        """The firmware's retained online status."""
        return self._now(sim_ms).status()
