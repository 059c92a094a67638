"""The simulated sensor: CT and voltage samples measured by the firmware's own code."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from agent.power import IDLE, OFF, RUN
from agent.profile import Profile, builtin_profile, builtin_profile_names
from agent.virtualsensor import VirtualSensor, firmware_config
from agent.waveform import Waveforms, burst_moments, choose_front_end
from gateway.inputs.protocol import SensorReading, decode_reading

T0 = 1_794_898_800_000  # 2026-11-17 08:00 in Berlin
WINDOW_MS = 10_000


def _sensor(profile: Profile, seed: int = 1) -> VirtualSensor:
    rng = np.random.default_rng(seed)
    front = choose_front_end(profile, rng)
    cfg = firmware_config("site", "m1", "m1-ct", WINDOW_MS, front, "127.0.0.1")
    sensor = VirtualSensor(cfg, profile, front, rng)
    sensor.power_on(T0)
    return sensor


def _window(sensor: VirtualSensor, end_ms: int, watts: float, state: int) -> SensorReading:
    """One window at a steady power, decoded by the gateway's own protocol decoder."""
    k = len(burst_moments(end_ms, WINDOW_MS))
    payload = sensor.measure(end_ms, np.full(k, watts), np.full(k, state, dtype=np.int8))
    return decode_reading(payload)


def _channel(reading: SensorReading) -> tuple[float, float, float]:
    (ch,) = reading.ch
    assert ch is not None
    irms, p, wh = ch
    return irms, p, wh


@pytest.mark.parametrize("name", builtin_profile_names())
def test_the_firmware_measures_each_profiles_real_power_within_half_a_percent(name: str) -> None:
    profile = builtin_profile(name)
    sensor = _sensor(profile)
    pw = profile.power
    levels = [(pw.idle_w, IDLE), (pw.run_w[0], RUN), (pw.run_w[1], RUN), (profile.peak_w, RUN)]
    for k, (watts, state) in enumerate(levels):
        if watts < 10:
            continue  # a compressor's 4 W standby is below what a clamp sized for 3 kW resolves
        reading = _window(sensor, T0 + (k + 1) * WINDOW_MS, watts, state)
        irms, p, _wh = _channel(reading)
        assert p == pytest.approx(watts, rel=0.005), (name, state, watts)
        assert irms > 0
        assert reading.c == 0  # nothing clipped, even at the profile's highest peak


def test_the_counter_adds_exactly_what_each_window_reports() -> None:
    sensor = _sensor(builtin_profile("laser-cutter"))
    readings = [_window(sensor, T0 + k * WINDOW_MS, 1300 + 50 * k, RUN) for k in range(1, 9)]
    for before, after in itertools.pairwise(readings):
        _, p, wh = _channel(after)
        step = wh - _channel(before)[2]
        assert step == pytest.approx(p * WINDOW_MS / 3.6e6, abs=0.001)  # docs/protocol.md


def test_samples_are_12_bit_counts_around_each_pins_bias() -> None:
    profile = builtin_profile("cnc-mill")
    rng = np.random.default_rng(3)
    front = choose_front_end(profile, rng)
    waves = Waveforms(profile, front)
    v, i = waves.window(np.full(10, 5000.0), np.full(10, RUN, dtype=np.int8), rng)
    assert len(v) == len(i) == 10 * waves.spc
    for samples, bias in ((v, front.v_bias), (i, front.i_bias)):
        arr = np.array(samples)
        assert arr.dtype.kind == "i" and arr.min() >= 0 and arr.max() <= 4095
        assert abs(arr.mean() - bias) < 3  # whole mains cycles: the AC part averages out
    assert front.v_bias != front.i_bias  # each divider has its own tolerance


def test_each_machine_gets_the_smallest_standard_clamp_that_fits() -> None:
    rng = np.random.default_rng(0)
    ratings = {
        n: choose_front_end(builtin_profile(n), rng).ct_rating_a for n in builtin_profile_names()
    }
    assert ratings["fdm-printer"] == 5.0
    assert ratings["cnc-mill"] == 50.0
    assert ratings["fdm-printer"] < ratings["laser-cutter"] < ratings["cnc-mill"]


def test_a_three_phase_machine_is_calibrated_as_a_balanced_load() -> None:
    front = choose_front_end(builtin_profile("cnc-lathe"), np.random.default_rng(0))
    assert front.phases == 3
    assert front.amps_per_volt == 3 * front.ct_rating_a


def test_bursts_sit_at_the_midpoints_of_the_window() -> None:
    assert list(burst_moments(10_000, 10_000)) == [500.0 + 1000 * k for k in range(10)]
    # A window that is not whole seconds: equal slices of at most a second each.
    assert list(burst_moments(5_000, 2_500)) == pytest.approx([2_916.667, 3_750.0, 4_583.333])
    assert list(burst_moments(3_000, 1_000)) == [2_500.0]


def test_a_power_cut_counts_a_boot_and_restarts_seq_with_the_counter_from_flash() -> None:
    sensor = _sensor(builtin_profile("cnc-mill"))
    readings = [_window(sensor, T0 + k * WINDOW_MS, 8000.0, RUN) for k in range(1, 31)]
    assert (readings[-1].b, readings[-1].s) == (1, 29)
    published_wh = _channel(readings[-1])[2]
    sensor.power_cut()
    assert not sensor.powered
    sensor.power_on(T0 + 31 * WINDOW_MS + 20_000)
    first = _window(sensor, T0 + 33 * WINDOW_MS + 20_000, 1500.0, IDLE)
    assert (first.b, first.s) == (2, 0)
    _, p, wh = _channel(first)
    restored = wh - p * WINDOW_MS / 3.6e6
    # Flash lags the published counter by less than persist_wh (docs/protocol.md, Counters).
    assert published_wh - sensor.cfg.persist_mwh / 1000 < restored <= published_wh + 0.001


def test_a_soft_reset_continues_the_counter_exactly() -> None:
    sensor = _sensor(builtin_profile("laser-cutter"))
    before = _window(sensor, T0 + WINDOW_MS, 2000.0, RUN)
    sensor.soft_reset(T0 + 2 * WINDOW_MS)
    after = _window(sensor, T0 + 3 * WINDOW_MS, 0.0, OFF)
    assert after.b == 2
    assert _channel(after)[2] == pytest.approx(_channel(before)[2], abs=0.001)


def test_flash_in_files_makes_the_next_run_the_next_boot(tmp_path: Path) -> None:
    profile = builtin_profile("fdm-printer")
    rng = np.random.default_rng(5)
    front = choose_front_end(profile, rng)
    cfg = firmware_config("site", "m1", "m1-ct", WINDOW_MS, front, "127.0.0.1")
    readings = []
    for run in range(2):  # two agent runs, one after the other
        sensor = VirtualSensor(cfg, profile, front, rng, tmp_path / "m1-ct")
        sensor.power_on(T0 + run * 3_600_000)
        readings.append(_window(sensor, T0 + run * 3_600_000 + WINDOW_MS, 80.0, RUN))
        assert sensor.fw is not None
        sensor.fw.persist(True)  # a planned stop saves the counters (the firmware's goodbye)
    assert [(r.b, r.s) for r in readings] == [(1, 0), (2, 0)]
    assert _channel(readings[1])[2] > _channel(readings[0])[2]  # the counter carried on
