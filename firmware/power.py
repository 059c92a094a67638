"""From a window's running sums to calibrated RMS current, voltage and mean power.

Results are integers in the units the protocol writes (mA, 0.1 W, 0.1 V), so every
platform (ESP32 with 32-bit floats, CPython, the agent) encodes exactly the same text.
"""

import math

from .rms import PHASE_ONE, Sums


class ChannelCal:
    """Calibration of one CT channel."""

    def __init__(
        self,
        amps_per_volt: float,
        volts_per_count: float,
        gain: float = 1.0,
        phase: float = 1.0,
        floor_a: float = 0.0,
        invert: bool = False,
    ) -> None:
        # amps_per_volt: primary amps per volt at the ADC pin: CT ratio / burden ohms for a
        # current-output CT (SCT-013-000: 2000 / 33 ohm = 60.6), or the rating of a
        # voltage-output CT (SCT-013-030: 30 A/V). gain trims it against a known load.
        self.amps_per_count = amps_per_volt * volts_per_count * gain
        self.phase256 = math.floor(phase * PHASE_ONE + 0.5)
        self.floor_ma = int(floor_a * 1000)
        self.sign = -1 if invert else 1


class VoltageCal:
    """Calibration of the voltage channel (ZMPT101B class transformer module)."""

    def __init__(self, volts_per_volt: float, volts_per_count: float, gain: float = 1.0) -> None:
        # volts_per_volt: mains volts per volt at the ADC pin, set by the module's trimmer;
        # found by calibration against a multimeter (docs/firmware.md).
        self.volts_per_count = volts_per_volt * volts_per_count * gain


class Result:
    """One window's measured values, in protocol units (all ints)."""

    def __init__(self, nch: int) -> None:
        self.ma = [0] * nch  # RMS current, mA
        self.dw = [0] * nch  # mean power, 0.1 W
        self.vr_dv: int | None = None  # RMS voltage, 0.1 V, None without a voltage channel
        self.n = 0
        self.clip = 0


def _rms_counts(sq: int, s1: int, n: int) -> float:
    # n * sum(x^2) - sum(x)^2 is exact in integers and never negative; divide once at the end.
    var_n2 = sq * n - s1 * s1
    return math.sqrt(var_n2) / n if var_n2 > 0 else 0.0


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _shift_gain(sums: Sums, k: int, var_v_n2: int) -> float:
    """RMS of channel k's phase-shifted voltage over the voltage's RMS, from the sums.

    The shifted voltage u = (1 - a) v[n-1] + a v[n] (a = phase / 256) of a sine has the
    amplitude |1 - a + a e^(jwT)|: below 1 between two samples, above 1 beyond the last one
    (+1.3 % for a = 1.5 at 2000 sample sets/s and 60 Hz), and real power with it. Its sums
    follow from the voltage's own, exactly in integers (scaled by 256^2), with p the sample
    each step starts from: sum(u^2) = (1-a)^2 sum(p^2) + 2a(1-a) sum(v p) + a^2 sum(v^2).
    """
    n = sums.n
    a = sums.phase[k]
    b = PHASE_ONE - a
    su = b * sums.total_p() + a * sums.vs1
    squ = b * b * sums.total_psq() + 2 * a * b * sums.total_vlag() + a * a * sums.total_vsq()
    var_u_n2 = squ * n - su * su
    if var_v_n2 <= 0 or var_u_n2 <= 0:
        return 1.0  # a flat voltage (no reference wired) has no amplitude to correct
    return math.sqrt(var_u_n2 / (var_v_n2 * PHASE_ONE * PHASE_ONE))


def finish(
    sums: Sums,
    cals: "list[ChannelCal]",
    vcal: VoltageCal | None,
    nominal_v: float,
    pf: float,
    out: Result,
) -> None:
    """Fill `out` from the window's sums (real power with a voltage channel, else estimated)."""
    n = sums.n
    out.n = n
    out.clip = sums.clip
    out.vr_dv = None
    if n == 0:
        for k in range(sums.nch):
            out.ma[k] = 0
            out.dw[k] = 0
        return
    var_v_n2 = sums.total_vsq() * n - sums.vs1 * sums.vs1
    if vcal is not None:
        vrms = _rms_counts(sums.total_vsq(), sums.vs1, n) * vcal.volts_per_count
        out.vr_dv = _round(vrms * 10)
    for k in range(sums.nch):
        cal = cals[k]
        irms = _rms_counts(sums.total_sq(k), sums.s1[k], n) * cal.amps_per_count
        ma = _round(irms * 1000)
        if ma <= cal.floor_ma:
            out.ma[k] = 0
            out.dw[k] = 0
            continue
        if vcal is None:
            # No voltage reference: apparent power from the nominal voltage, scaled by the
            # configured power factor (1.0 unless the machine's PF is known).
            watts = irms * nominal_v * pf
        else:
            cov_n2 = sums.total_vi(k) * n - sums.vs1 * sums.s1[k]
            watts = cov_n2 / (n * n) * cal.amps_per_count * vcal.volts_per_count * cal.sign
            watts /= _shift_gain(sums, k, var_v_n2)
        out.ma[k] = ma
        out.dw[k] = _round(watts * 10)
