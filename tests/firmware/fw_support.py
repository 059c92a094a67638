"""Test helpers that run under CPython and MicroPython alike (no pytest, no numpy).

Synthetic CT and voltage waveforms as raw 12-bit ADC samples (DC bias, harmonics, noise,
quantisation, clipping), a deterministic noise source, scratch folders, and a sensor on
the fake hardware layer.
"""

import math
import os
import sys
from array import array

from firmware import config
from firmware.app import Sensor, open_sensor
from firmware.hal_fake import FakeHal

VECTORS = "tests/vectors"  # relative to the repository root (the runner's cwd)
_scratch = [0]


class Noise:
    """Deterministic noise (an LCG), identical on every platform."""

    def __init__(self, seed: int = 12345) -> None:
        self.state = seed

    def uniform(self) -> float:
        """Uniform in [-0.5, 0.5)."""
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return self.state / 2147483648.0 - 0.5

    def gauss(self) -> float:
        """Approximately normal, unit variance (sum of 4 uniforms, scaled by sqrt(3))."""
        return (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 1.7320508


def wave(
    n: int,
    fs: float,
    amp_counts: float,
    offset: float = 2048.0,
    harmonics: "tuple[tuple[int, float, float], ...]" = (),
    noise_counts: float = 0.0,
    phase: float = 0.0,
    freq: float = 50.0,
    seed: int = 1,
) -> "array[int]":
    """n raw ADC samples at fs Hz: offset + amp*(sin + harmonics) + noise, 12-bit, clipped.

    harmonics are (order, relative amplitude, phase in radians).
    """
    out = array("H", bytes(2 * n))
    rnd = Noise(seed)
    w = 2 * math.pi * freq / fs
    for i in range(n):
        x = math.sin(w * i + phase)
        for order, rel, ph in harmonics:
            x += rel * math.sin(order * (w * i + phase) + ph)
        v = offset + amp_counts * x + (noise_counts * rnd.gauss() if noise_counts else 0.0)
        c = math.floor(v + 0.5)
        out[i] = 0 if c < 0 else 4095 if c > 4095 else c
    return out


def true_rms(amp_counts: float, harmonics: "tuple[tuple[int, float, float], ...]" = ()) -> float:
    """RMS of the ideal waveform in counts (harmonics add in quadrature)."""
    return amp_counts / math.sqrt(2) * math.sqrt(1 + sum(rel * rel for _, rel, _ in harmonics))


def scratch() -> str:
    """A new empty folder for files."""
    _scratch[0] += 1
    if sys.implementation.name != "micropython":
        import tempfile

        return tempfile.mkdtemp(prefix="fwtest-")
    path = "/tmp"
    try:  # noqa: SIM105 - MicroPython has no contextlib
        os.mkdir(path)
    except OSError:
        pass  # already there
    path += f"/fw{_scratch[0]}"
    os.mkdir(path)
    return path


def config_doc(**over: object) -> dict:  # type: ignore[type-arg]
    """A valid sensor config document; keyword arguments replace top-level keys."""
    doc = {
        "site": "demo",
        "machine": "cnc-01",
        "wifi": {"ssid": "workshop", "password": "x"},
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "window_ms": 10000,
        "channels": [{"name": "spindle", "pin": 34, "amps_per_volt": 60.6}],
    }
    doc.update(over)
    return doc


def make_sensor(hal: FakeHal, **over: object) -> Sensor:
    """A started sensor (one boot) on hal with config_doc(**over)."""
    import json

    cfg = config.parse([("config.json", json.dumps(config_doc(**over)))], hal.unique_id())
    sensor = open_sensor(hal, cfg)
    sensor.start()
    return sensor
