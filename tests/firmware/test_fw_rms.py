# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""RMS current, voltage and real power from running sums, on synthetic 12-bit waveforms."""

import math

from fw_support import true_rms, wave

from firmware.hal_fake import Samples
from firmware.power import ChannelCal, Result, VoltageCal, finish
from firmware.rms import Sums, burst

FS = 2017.0  # not a multiple of 50 Hz: windows never hold whole cycles only
VPC = 3.3 / 4095


def _measure(samples: "list[object]", vsamples: object = None, phase: float = 1.0) -> Result:
    reads = tuple(Samples(s).read for s in samples)
    vread = None if vsamples is None else Samples(vsamples).read
    sums = Sums(len(reads))
    cals = [ChannelCal(1 / VPC, VPC, phase=phase) for _ in reads]  # 1 A per count
    for k in range(len(reads)):
        sums.phase[k] = cals[k].phase256
    n = len(samples[0])  # type: ignore[arg-type]
    for _ in range(n // 500):  # bursts, as the sampler takes them
        burst(sums, reads, vread, 500)
    out = Result(len(reads))
    vcal = None if vsamples is None else VoltageCal(1 / VPC, VPC)
    finish(sums, cals, vcal, 230.0, 1.0, out)
    return out


def _close(measured_ma: int, true_counts: float, tol: float = 0.01) -> bool:
    return abs(measured_ma / 1000 - true_counts) <= tol * true_counts


def test_rms_of_a_clean_sine_on_a_dc_bias() -> None:
    s = wave(5000, FS, 600.0, offset=1850.0)
    assert _close(_measure([s]).ma[0], true_rms(600.0), 0.002)


def test_rms_with_harmonics_noise_and_quantisation_is_within_one_percent() -> None:
    harm = ((3, 0.30, 0.4), (5, 0.12, 1.1), (7, 0.05, 2.0))  # a rectifier/VFD-like current
    for amp in (15.0, 120.0, 900.0):  # a few counts of signal up to most of the range
        s = wave(6000, FS, amp, offset=2011.0, harmonics=harm, noise_counts=1.5, seed=int(amp))
        truth = math.sqrt(true_rms(amp, harm) ** 2 + 1.5**2)  # noise adds in quadrature
        got = _measure([s]).ma[0]
        assert _close(got, truth), (amp, got, truth)


def test_dc_bias_far_from_mid_scale_is_removed() -> None:
    # A divider with 10 % tolerance resistors sits well away from 2048.
    for offset in (1500.0, 2600.0):
        s = wave(5000, FS, 300.0, offset=offset, noise_counts=1.0)
        assert _close(_measure([s]).ma[0], true_rms(300.0))


def test_clipped_samples_are_counted() -> None:
    s = wave(5000, FS, 2500.0)  # swings past both rails
    out = _measure([s])
    assert out.clip > 1000
    assert _measure([wave(5000, FS, 1000.0)]).clip == 0


def test_channels_are_independent() -> None:
    a = wave(5000, FS, 100.0, seed=1, noise_counts=1.0)
    b = wave(5000, FS, 700.0, seed=2, phase=1.0, noise_counts=1.0)
    out = _measure([a, b])
    assert _close(out.ma[0], math.sqrt(true_rms(100.0) ** 2 + 1))
    assert _close(out.ma[1], math.sqrt(true_rms(700.0) ** 2 + 1))


def test_real_power_follows_the_phase_angle() -> None:
    v = wave(5000, FS, 800.0, offset=2030.0, noise_counts=1.0, seed=3)
    for lag in (0.0, 0.5, math.pi / 2):  # power factor 1, 0.88, 0
        i = wave(5000, FS, 400.0, offset=1990.0, phase=-lag, noise_counts=1.0, seed=4)
        out = _measure([i], v)
        # With 1 A and 1 V per count: P = Vrms * Irms * cos(lag).
        expect = true_rms(800.0) * true_rms(400.0) * math.cos(lag)
        assert abs(out.dw[0] / 10 - expect) <= 0.01 * true_rms(800.0) * true_rms(400.0), (
            lag,
            out.dw[0],
        )
        assert out.vr_dv is not None and abs(out.vr_dv / 10 - true_rms(800.0)) <= 0.01 * true_rms(
            800.0
        )


def test_phase_calibration_corrects_a_sampling_delay() -> None:
    # A purely reactive load (P = 0) whose current is read 0.6 sample periods after the
    # voltage: uncalibrated, the delay shows up as ~9 % of the apparent power. phase = 1.6
    # moves the voltage sample the same 0.6 periods along its last step (emonLib PHASECAL).
    step = 2 * math.pi * 50 / FS
    v = wave(5000, FS, 800.0, seed=5)
    i = wave(5000, FS, 400.0, phase=-math.pi / 2 + 0.6 * step, seed=6)
    apparent = true_rms(800.0) * true_rms(400.0)
    uncorrected = _measure([i], v, phase=1.0).dw[0] / 10
    corrected = _measure([i], v, phase=1.6).dw[0] / 10
    assert abs(uncorrected) > 0.05 * apparent
    assert abs(corrected) < 0.005 * apparent


def test_without_voltage_power_is_apparent_from_nominal_voltage() -> None:
    s = wave(5000, FS, 400.0)
    out = _measure([s])
    assert abs(out.dw[0] / 10 - out.ma[0] / 1000 * 230.0) <= 0.0005 * 230 + 0.05  # roundings


def test_noise_floor_reports_zero() -> None:
    s = wave(5000, FS, 0.0, noise_counts=2.0)  # an idle machine: only noise
    reads = (Samples(s).read,)
    sums = Sums(1)
    burst(sums, reads, None, 5000)
    out = Result(1)
    finish(sums, [ChannelCal(1 / VPC, VPC, floor_a=2.5)], None, 230.0, 1.0, out)
    assert out.ma[0] == 0 and out.dw[0] == 0


def test_offset_tracking_keeps_later_windows_exact() -> None:
    s = wave(4000, FS, 500.0, offset=1700.0)
    sums = Sums(1)
    reads = (Samples(s).read,)
    cals = [ChannelCal(1 / VPC, VPC)]
    out = Result(1)
    results = []
    for _ in range(3):
        burst(sums, reads, None, 4000)
        finish(sums, cals, None, 230.0, 1.0, out)
        results.append(out.ma[0])
        sums.track_offsets()
        sums.clear()
    assert abs(sums.off[0] - 1700) <= 1
    assert max(results) - min(results) <= 1  # the same window measured the same
