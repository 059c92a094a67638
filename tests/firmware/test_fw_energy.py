# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""Energy counters: exact accumulation, and nothing lost across reboots and power cuts."""

import json

from fw_support import make_sensor, wave

from firmware.energy import UNITS_PER_MWH, Counters
from firmware.hal_fake import FakeHal, MemArea
from firmware.rms import burst

W_MS = 10000


def test_counter_carries_the_fraction_exactly() -> None:
    c = Counters(1)
    total_units = 0
    for dw in (1, 7, 12345, 3, 99999, 0, -50, 4):  # 0.1 W .. 10 kW; negative adds nothing
        c.add(0, dw, 1001)
        total_units += max(dw, 0) * 1001
    assert c.mwh[0] == total_units // UNITS_PER_MWH
    assert c.rem[0] == total_units % UNITS_PER_MWH


def test_many_tiny_windows_add_up() -> None:
    c = Counters(1)
    for _ in range(36000):
        c.add(0, 1, 1)  # 0.1 W for 1 ms: 1/36000 mWh each, far below the counter's step
    assert (c.mwh[0], c.rem[0]) == (1, 0)


def _hal() -> FakeHal:
    hal = FakeHal()
    hal.wifi = False  # offline the whole time: every reading goes to the flash ring
    hal.set_samples(34, wave(4017, 2017.0, 400.0, noise_counts=1.0))
    return hal


def _payloads(sensor: object, hal: FakeHal, n: int) -> "list[bytes]":
    out = []
    for i in range(n):
        # A machine that runs, idles and runs: different power in each window.
        hal.pins[34].samples = wave(2000, 2017.0, (400.0, 40.0, 900.0)[i % 3], seed=i)
        hal.pins[34].i = 0
        burst(sensor.sums, sensor.reads, sensor.vread, 2000)  # type: ignore[attr-defined]
        hal.now_ms += W_MS
        out.append(sensor.close_window(W_MS, sensor.clock.uptime()))  # type: ignore[attr-defined]
    return out


def _windows(sensor: object, hal: FakeHal, n: int) -> "list[dict]":  # type: ignore[type-arg]
    return [json.loads(p) for p in _payloads(sensor, hal, n)]


def _gateway_energy_mwh(readings: "list[dict]") -> float:  # type: ignore[type-arg]
    """docs/protocol.md's rule: counter differences within a boot, p * w for a boot's first."""
    seen = set()
    total = 0.0
    last: dict[int, float] = {}
    for r in readings:
        if (r["b"], r["s"]) in seen:
            continue
        seen.add((r["b"], r["s"]))
        wh = r["ch"][0][2]
        if r["b"] in last:
            total += (wh - last[r["b"]]) * 1000
        else:
            total += max(r["ch"][0][1], 0) * r["w"] / 3600
        last[r["b"]] = wh
    return total


def _exact_mwh(readings: "list[dict]") -> float:  # type: ignore[type-arg]
    return sum(max(r["ch"][0][1], 0) * r["w"] / 3600 for r in readings)


def test_counter_is_exactly_the_sum_of_the_readings() -> None:
    hal = _hal()
    sensor = make_sensor(hal)
    readings = _windows(sensor, hal, 12)
    units = sum(max(round(r["ch"][0][1] * 10), 0) * r["w"] for r in readings)
    assert round(readings[-1]["ch"][0][2] * 1000) == units // UNITS_PER_MWH


def test_soft_reset_continues_the_counter_exactly() -> None:
    hal = _hal()
    first = make_sensor(hal)
    before = _windows(first, hal, 7)
    counter = (first.counters.mwh[0], first.counters.rem[0])
    hal.cause = "watchdog"  # RTC memory survives: the record there is newer than flash
    second = make_sensor(hal)
    assert (second.counters.mwh[0], second.counters.rem[0]) == counter
    after = _windows(second, hal, 3)
    assert after[0]["b"] == before[0]["b"] + 1 and after[0]["s"] == 0
    assert abs(_gateway_energy_mwh(before + after) - _exact_mwh(before + after)) < 2


def test_power_cut_restores_from_flash_and_the_gateway_loses_nothing() -> None:
    hal = _hal()
    readings: list[dict] = []  # type: ignore[type-arg]
    for boot in range(4):
        sensor = make_sensor(hal, persist_wh=20)  # a window adds ~9 Wh: saves every few
        if boot:
            restored = sensor.counters.mwh[0]
            published = round(readings[-1]["ch"][0][2] * 1000)
            # The flash copy lags the last published counter by less than persist_wh.
            assert restored <= published
            assert published - restored < sensor.cfg.persist_mwh
        readings += _windows(sensor, hal, 5 + boot)
        hal.power_cut()
    assert [r["b"] for r in readings].count(readings[0]["b"]) == 5
    assert len({(r["b"], r["s"]) for r in readings}) == len(readings)  # (boot, seq) unique
    # Counter differences within a boot, p * w for each boot's first window: every mWh.
    assert abs(_gateway_energy_mwh(readings) - _exact_mwh(readings)) < 4  # < 1 mWh per boot


class _TornArea(MemArea):
    """Flash whose next write is cut off half-way by a power failure."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def write(self, offset: int, data: bytes) -> None:
        if self.armed:
            self.armed = False
            super().write(offset, data[: len(data) // 2])
            raise _PowerCut()
        super().write(offset, data)


class _PowerCut(Exception):
    pass


def test_power_cut_during_a_flash_write_falls_back_to_the_previous_record() -> None:
    hal = _hal()
    torn = _TornArea()
    hal.areas["state.bin"] = torn
    sensor = make_sensor(hal)
    _windows(sensor, hal, 6)
    saved = sensor.flash.load()
    assert saved is not None
    torn.armed = True
    try:  # noqa: SIM105 - MicroPython has no contextlib
        sensor.persist(True)
    except _PowerCut:
        pass  # the chip is dead from here on
    hal.power_cut()
    again = make_sensor(hal)
    assert again.counters.mwh[0] == saved.mwh[0]
    assert again.state.boot == saved.boot + 1


def test_offline_readings_of_every_boot_replay_in_order_byte_identical() -> None:
    hal = _hal()
    readings: list[bytes] = []
    for _ in range(3):
        readings += _payloads(make_sensor(hal), hal, 4)
        hal.power_cut()
    sensor = make_sensor(hal)
    replayed = []
    while sensor.outbox.next() is not None:
        replayed.append(bytes(sensor.outbox.next() or b""))
        sensor.outbox.done()
    assert replayed == readings
