"""Raw ADC samples of a simulated sensor: CT clamp and voltage transformer on a 12-bit ADC.

What a shopwatt sensor's pins see while a machine draws a given power: a mains voltage
and a current with the profile's displacement power factor and current harmonics, each
through its transducer onto a DC bias at mid-rail, with ADC noise, rounding to counts and
clipping at the rails. Generated with numpy for a whole measurement window at once; the
firmware's own `rms.burst` then consumes the samples one by one, exactly as on the chip.

Sampling plan (the trade-off that keeps many sensors cheap): the ESP32 samples thousands
of sets per window; the simulation takes one burst of one mains cycle per second of the
window, `samples_per_cycle` sets per cycle, at the burst's moment in the window. Each
burst is coherent (whole cycles), so harmonics below half the sample rate are measured
exactly, and the bursts sit at the midpoints of equal slices of the window, so their mean
power is the window's mean of the piecewise-linear true power (the midpoint rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.power import RUN
from agent.profile import Electrical, Profile
from gateway.engine.model import F64

I8 = npt.NDArray[np.int8]

ADC_COUNTS = 4096  # 12-bit
VOLTS_PER_COUNT = 3.3 / 4095  # an ideal ADC over 3.3 V (the firmware's FakeHal says the same)
MID = 2048.0
# SCT-013 clamps with a built-in burden: 1 V RMS at the rated current (amps per volt).
CT_RATINGS_A = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 60.0, 100.0)
CT_PEAK_V = 1.55  # the largest current peak must stay this far from the bias (rails +-1.65 V)
# A ZMPT101B-class voltage module trimmed to 250 mains volts per ADC volt: 230 V peaks at
# 1.30 V, leaving room for +10 % supply tolerance.
VOLTS_PER_VOLT = 250.0
NOISE_COUNTS = 0.8  # RMS noise of the ESP32 ADC with a decoupled divider, in counts
BIAS_SPREAD = 40.0  # the bias divider's tolerance: the mid-rail is off by up to this
SUPPLY_SPREAD = 0.01  # relative standard deviation of the mains voltage between bursts


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """One sensor's analog side: which clamp, how it is calibrated, where its biases sit.

    A three-phase machine is measured as a balanced load: the clamp and the voltage module
    sit on L1 and the firmware's calibration (amps_per_volt) carries the factor `phases`,
    so the channel reports the machine's whole power (and the sum of its phase currents).
    """

    ct_rating_a: float  # the clamp's amps per volt
    phases: int
    i_bias: float  # DC bias of the current pin, counts
    v_bias: float  # DC bias of the voltage pin, counts
    noise_counts: float = NOISE_COUNTS

    @property
    def amps_per_volt(self) -> float:
        """The firmware's channel calibration (see the class docstring for `phases`)."""
        return self.ct_rating_a * self.phases


def choose_front_end(profile: Profile, rng: np.random.Generator) -> FrontEnd:
    """The smallest standard clamp whose current peak (harmonics in phase) fits the ADC."""
    supply = profile.electrical
    # The largest fundamental current per phase: the profile's peak power, or idle noise
    # at idle's (lower) power factor, whichever needs more current.
    idle_top = profile.power.idle_w * 1.5
    peaks = [
        watts
        / (supply.phases * supply.voltage_v * shape.power_factor)
        * np.sqrt(2)
        * (1 + sum(shape.harmonics.values()))
        for watts, shape in ((profile.peak_w, supply.run), (idle_top, supply.idle))
    ]
    need = max(peaks) * (1 + 3 * SUPPLY_SPREAD) / CT_PEAK_V
    rating = next((r for r in CT_RATINGS_A if r >= need), CT_RATINGS_A[-1])
    i_bias, v_bias = MID + rng.uniform(-BIAS_SPREAD, BIAS_SPREAD, 2)
    return FrontEnd(rating, supply.phases, float(i_bias), float(v_bias))


@dataclass(frozen=True, slots=True)
class _Shape:
    """A state's current waveform as arrays over the harmonic orders."""

    phi: float  # displacement angle of the fundamental, rad (current lags)
    orders: F64
    amps: F64  # relative amplitude per order


def _shape(e: Electrical) -> _Shape:
    orders = np.array(sorted(e.harmonics), dtype=np.float64)
    return _Shape(
        float(np.arccos(e.power_factor)), orders, np.array([e.harmonics[int(h)] for h in orders])
    )


class Waveforms:
    """Generates a window's raw samples for one sensor (voltage pin and current pin)."""

    def __init__(self, profile: Profile, front: FrontEnd, samples_per_cycle: int = 32) -> None:
        e = profile.electrical
        top = max([2, *e.idle.harmonics, *e.run.harmonics])
        # Nyquist: every harmonic of the profile below half the sample rate.
        self.spc = max(samples_per_cycle, 2 * top + 2)
        self.front = front
        self.voltage_v = e.voltage_v
        self.shapes = (_shape(e.idle), _shape(e.run))  # OFF uses idle's supply electronics
        self._theta = 2 * np.pi * np.arange(self.spc) / self.spc

    def window(
        self, watts: F64, state: I8, rng: np.random.Generator
    ) -> tuple[list[int], list[int]]:
        """Raw counts (voltage, current) for one burst per entry of watts/state."""
        k = len(watts)
        fe = self.front
        theta = self._theta[None, :] + rng.uniform(0, 2 * np.pi, (k, 1))  # free-running phase
        v_rms = self.voltage_v * (1 + SUPPLY_SPREAD * rng.standard_normal((k, 1)))
        running = (state == RUN)[:, None]
        idle, run = self.shapes
        phi = np.where(running, run.phi, idle.phi)
        # Real power is carried by the fundamental only (the voltage is a clean sine), so the
        # fundamental's RMS follows from P = V * I1 * cos(phi) per phase.
        i1 = np.maximum(watts[:, None], 0.0) / (fe.phases * v_rms * np.cos(phi))
        wave = np.sin(theta - phi)
        for shape, mask in ((idle, ~running), (run, running)):
            for order, amp in zip(shape.orders, shape.amps, strict=True):
                wave += np.where(mask, amp * np.sin(order * (theta - phi)), 0.0)
        amps = np.sqrt(2) * i1 * wave
        volts = np.sqrt(2) * v_rms * np.sin(theta)
        i_counts = fe.i_bias + amps / fe.ct_rating_a / VOLTS_PER_COUNT
        v_counts = fe.v_bias + volts / VOLTS_PER_VOLT / VOLTS_PER_COUNT
        return _adc(v_counts, fe.noise_counts, rng), _adc(i_counts, fe.noise_counts, rng)


def _adc(counts: F64, noise: float, rng: np.random.Generator) -> list[int]:
    """Noise, rounding to whole counts and the rails of a 12-bit converter."""
    noisy = counts + noise * rng.standard_normal(counts.shape)
    raw = np.clip(np.floor(noisy + 0.5), 0, ADC_COUNTS - 1).astype(np.int64)
    return list(raw.ravel().tolist())


def burst_moments(window_end_ms: int, window_ms: int) -> npt.NDArray[np.float64]:
    """UTC ms of the window's bursts: midpoints of one-second (or shorter) equal slices."""
    k = max(1, -(-window_ms // 1000))
    return window_end_ms - window_ms + (np.arange(k, dtype=np.float64) + 0.5) * (window_ms / k)
