# MicroPython only (run by test_fw_micropython.py through tests/firmware/mpy/run.mjs):
# gc.mem_alloc / gc.mem_free mean nothing under CPython, so pytest does not collect this.
"""The sampling loop allocates nothing per sample, and the heap does not drift.

test_* functions run in the harness; setup/step/check run with `--steps=mpy_memory:N`,
one window per step, each step in its own runPython call (see run.mjs for why).
"""

import gc

from fw_support import make_sensor, scratch, wave

from firmware.app import Sensor
from firmware.hal_fake import FakeHal, Samples
from firmware.rms import Sums, burst

MARKS = (50, 299)  # steps at which the heap is measured (after a collection)
_run: dict = {}  # type: ignore[type-arg]


def _allocated_by(fn: object) -> int:
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()  # type: ignore[attr-defined]
        fn()  # type: ignore[operator]
        return gc.mem_alloc() - before  # type: ignore[attr-defined, no-any-return]
    finally:
        gc.enable()


def test_burst_allocates_nothing_per_sample() -> None:
    reads = tuple(Samples(wave(1000, 2017.0, 300.0 + 200 * k, seed=k)).read for k in range(3))
    vread = Samples(wave(1000, 2017.0, 800.0, seed=9)).read
    sums = Sums(3)
    burst(sums, reads, vread, 10)  # warm up
    small = _allocated_by(lambda: burst(sums, reads, vread, 100))
    large = _allocated_by(lambda: burst(sums, reads, vread, 20000))
    print("burst: bytes allocated for 100 and 20000 sample sets:", small, large)
    assert large == small  # whatever a call costs, it does not grow with the samples
    assert large <= 64


def setup() -> None:
    """A sensor with two CTs and a voltage channel, offline, on a small flash ring."""
    hal = FakeHal(folder=scratch())
    hal.set_samples(34, wave(2017, 2017.0, 400.0, noise_counts=1.0))
    hal.set_samples(35, wave(2017, 2017.0, 90.0, noise_counts=1.0, seed=2))
    hal.set_samples(36, wave(2017, 2017.0, 800.0, seed=3))
    _run["hal"] = hal
    _run["sensor"] = make_sensor(
        hal,
        channels=[
            {"name": "spindle", "pin": 34, "amps_per_volt": 60.6},
            {"name": "coolant", "pin": 35, "amps_per_volt": 60.6},
        ],
        voltage={"pin": 36, "volts_per_volt": 480.0},
        buffer_slots=64,
    )
    _run["marks"] = {}


def step(i: int) -> None:
    """One window: bursts, close, and now and then the broker takes the backlog."""
    if i in MARKS:
        gc.collect()
        _run["marks"][i] = (gc.mem_free(), gc.mem_alloc())  # type: ignore[attr-defined]
    hal: FakeHal = _run["hal"]
    sensor: Sensor = _run["sensor"]
    for _ in range(2):
        burst(sensor.sums, sensor.reads, sensor.vread, 200)
    hal.now_ms += 10000
    sensor.close_window(10000, sensor.clock.uptime())
    if i % 3 == 0:
        while sensor.outbox.next() is not None:
            sensor.outbox.done()


def check() -> None:
    """The heap after window 400 is where it was after window 100."""
    a, b = (_run["marks"][m] for m in MARKS)
    print(f"heap after windows {MARKS[0]} and {MARKS[1]} (free, allocated):", a, b)
    assert b[1] - a[1] <= 512, f"heap grew by {b[1] - a[1]} bytes"
    assert a[0] - b[0] <= 512
