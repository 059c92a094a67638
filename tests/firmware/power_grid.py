"""Real power of a 3-clamp sensor against the truth, per sample rate, mains frequency, load.

Runs under CPython and MicroPython (no numpy). The sensor reads the voltage, then its CTs
one after another, evenly spaced within a sample set, so CT k is read (k + 1) / 4 of a set
after the voltage; each channel's `phase` is what calibration on a reactive load finds.
Between bursts the network runs and the samples of that pause are never taken.
`PYTHONPATH=. .venv/bin/python tests/firmware/power_grid.py` prints the table in docs/firmware.md.
"""

import math
from array import array

from fw_support import Noise

from firmware.hal_fake import Samples
from firmware.power import ChannelCal, Result, VoltageCal, finish
from firmware.rms import Sums, burst

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable

    Shape = Callable[[float], float]

RATES = (2000, 4000, 10000)  # sample sets per second
MAINS = (50, 60)  # Hz
NCH = 3
V_AMP, I_AMP, RECT_PEAK = 800.0, 600.0, 900.0  # counts: within the ADC's linear range
OFFSETS = (2030.0, 1990.0, 2075.0, 2011.0)  # voltage, then CT bias points (counts)
PAUSE_SETS = 13  # the network runs between two bursts for about this long


def _sine(x: float) -> float:
    return math.sin(x)


def _lagging(x: float) -> float:
    return math.sin(x - math.acos(0.8))  # power factor 0.8, inductive


def _rectifier(x: float) -> float:
    # A capacitor-input rectifier draws pulses at the voltage peaks: sin^25 has crest factor
    # 2.98 (its RMS is 0.335 of its peak) and a fundamental of 0.31 of its peak.
    return math.sin(x) ** 25


LOADS: "tuple[tuple[str, Shape, float], ...]" = (
    ("pf 1", _sine, I_AMP),
    ("pf 0.8", _lagging, I_AMP),
    ("rectifier", _rectifier, RECT_PEAK),
)


def calibrated_phase(delay: float, fs: float, freq: float) -> float:
    """The phase factor whose interpolation delays the mains fundamental by `delay` sets.

    What calibration on a reactive load converges to, in the factor's 1/256 steps: the
    voltage moved along its last step, (1 - a) v[n-1] + a v[n], leads v[n] by
    atan((a - 1) sin(wT) / (1 + (a - 1)(1 - cos(wT)))).
    """
    wt = 2 * math.pi * freq / fs
    tan_d = math.tan(delay * wt)
    b = tan_d / (math.sin(wt) - tan_d * (1 - math.cos(wt)))
    return math.floor((1 + b) * 256 + 0.5) / 256


def _pin(w: float, n: int, delay: float, shape: "Shape", amp: float, offset: float) -> "array[int]":
    """n raw samples of offset + amp * shape(w t) + 1 count of noise, read `delay` sets late."""
    out = array("H", bytes(2 * n))
    rnd = Noise(int(offset))
    for i in range(n):
        c = math.floor(offset + amp * shape(w * (i + delay)) + rnd.gauss() + 0.5)
        out[i] = 0 if c < 0 else 4095 if c > 4095 else c
    return out


def _truth(shape: "Shape", amp: float) -> float:
    # The mean of v * i over one cycle: exact on 256 points for these trigonometric
    # polynomials (degree 26 at most), in W with 1 V and 1 A per count.
    m = 256
    x = [2 * math.pi * j / m for j in range(m)]
    return sum(V_AMP * math.sin(xj) * amp * shape(xj) for xj in x) / m


def errors(fs: int, freq: int) -> "list[tuple[str, int, float]]":
    """(load, channel, real power error in %) for every load on every channel."""
    # Bursts of 0.1 s (whole cycles of 50 and 60 Hz: the pauses leave the mean unbiased),
    # 200 sets at 2000 sets/s as on the chip, two to a window.
    per = fs // 10
    n = 2 * per
    w = 2 * math.pi * freq / fs
    vpc = 3.3 / 4095
    delays = [(k + 1) / (NCH + 1) for k in range(NCH)]
    cals = [ChannelCal(1 / vpc, vpc, phase=calibrated_phase(d, fs, freq)) for d in delays]
    vsamples = _pin(w, n, 0.0, _sine, V_AMP, OFFSETS[0])
    out = []
    for turn in range(len(LOADS)):  # every load on every channel
        loads = [LOADS[(turn + k) % len(LOADS)] for k in range(NCH)]
        pins = [_pin(w, n, delays[k], loads[k][1], loads[k][2], OFFSETS[k + 1]) for k in range(NCH)]
        sums = Sums(NCH)
        for k in range(NCH):
            sums.phase[k] = cals[k].phase256
        adcs = [Samples(p) for p in pins]
        vadc = Samples(vsamples)
        reads = tuple(adc.read for adc in adcs)
        for _ in range(n // per):
            burst(sums, reads, vadc.read, per)
            vadc.i = (vadc.i + PAUSE_SETS) % n  # the network's turn: samples nobody takes
            for adc in adcs:
                adc.i = (adc.i + PAUSE_SETS) % n
        res = Result(NCH)
        finish(sums, cals, VoltageCal(1 / vpc, vpc), 230.0, 1.0, res)
        for k in range(NCH):
            truth = _truth(loads[k][1], loads[k][2])
            out.append((loads[k][0], k, 100 * (res.dw[k] / 10 - truth) / truth))
    return out


def main() -> None:
    """Print the worst error per rate, mains frequency and channel (docs/firmware.md)."""
    print("| sets/s | mains | CT 1 | CT 2 | CT 3 |")
    print("|---|---|---|---|---|")
    for fs in RATES:
        for freq in MAINS:
            worst = [0.0] * NCH
            for _, k, err in errors(fs, freq):
                if abs(err) > abs(worst[k]):
                    worst[k] = err
            print(f"| {fs} | {freq} Hz | " + " | ".join(f"{e:+.2f} %" for e in worst) + " |")


if __name__ == "__main__":
    main()
