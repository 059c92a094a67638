"""Sampling with running integer sums: RMS and real power without sample arrays.

A window's statistics are sums over its samples: n, sum(x), sum(x^2) per current channel,
the same for the voltage channel, and sum(v*i) per current channel. RMS is then
sqrt(mean(x^2) - mean(x)^2) (the DC bias of the CT's divider drops out, with no filter
that needs time to settle), computed exactly in integers at the end of the window.

Why integers with a carry limb: MicroPython boxes every float and every int beyond 30
bits on the heap, and the ESP32's floats are 32-bit. Samples are shifted by the previous
window's mean (so the sums stay small and nothing cancels catastrophically), squares of
12-bit values fit a small int, and each sum of squares is kept as hi * 2**28 + lo with lo
carried into hi. The per-sample loop therefore allocates nothing and loses nothing.

The voltage is also summed as sum(v[n] * v[n-1]), one product per sample set: with it the
power module knows, once per window, how much each channel's phase correction (the voltage
moved along its last step) changed the voltage's amplitude, and takes that out again. The
first set of a burst has no last step (the network ran in between): it is used as it is.
"""

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable

LIMB = 1 << 28  # lo limb carries into hi before leaving MicroPython's small-int range
RAIL = 4095  # 12-bit ADC: a sample at 0 or 4095 is clipped (CT saturated, burden too big)
PHASE_ONE = 256  # phase factors are fixed point: 256 means "use the voltage sample as is"
MID = 2048  # first guess of the DC bias before the first window has measured it


def _zero() -> int:
    """A stand-in voltage reader for sensors without a voltage channel."""
    return MID


class Sums:
    """The running sums of one window for `nch` current channels and one voltage channel."""

    def __init__(self, nch: int) -> None:
        self.nch = nch
        self.off = [MID] * nch  # DC bias estimate per channel (ADC counts)
        self.voff = MID
        self.phase = [PHASE_ONE] * nch  # voltage interpolation factor per channel, /256
        # The per-channel sums, allocated once; clear() zeroes them and sets the rest.
        self.s1 = [0] * nch
        self.qh = [0] * nch
        self.ql = [0] * nch
        self.ph = [0] * nch
        self.pl = [0] * nch
        self.clear()

    def clear(self) -> None:
        """Start a new window (in place: the lists are reused, nothing is allocated)."""
        for k in range(self.nch):
            self.s1[k] = 0
            self.qh[k] = 0
            self.ql[k] = 0
            self.ph[k] = 0
            self.pl[k] = 0
        self.n = 0
        self.clip = 0
        self.vs1 = 0
        self.vqh = 0
        self.vql = 0
        # sum(v * p) and sum(p^2) - sum(v^2), p the voltage each step starts from (v[n-1],
        # or v[n] itself in a burst's first set), as hi * LIMB + lo, signed; and
        # sum(p) - sum(v), a small int (per burst: first sample - last one).
        self.vlh = 0
        self.vll = 0
        self.vph = 0
        self.vpl = 0
        self.vp1 = 0

    def total_sq(self, k: int) -> int:
        """sum(x^2) of channel k, offset-removed counts^2."""
        return self.qh[k] * LIMB + self.ql[k]

    def total_vi(self, k: int) -> int:
        """sum(v*i) of channel k, offset-removed counts^2."""
        return self.ph[k] * LIMB + self.pl[k]

    def total_vsq(self) -> int:
        """sum(v^2) of the voltage channel."""
        return self.vqh * LIMB + self.vql

    def total_vlag(self) -> int:
        """sum(v * p): each voltage sample times the one its step starts from."""
        return self.vlh * LIMB + self.vll

    def total_psq(self) -> int:
        """sum(p^2) of the voltage samples the steps start from."""
        return self.total_vsq() + self.vph * LIMB + self.vpl

    def total_p(self) -> int:
        """sum(p) of the voltage samples the steps start from."""
        return self.vs1 + self.vp1

    def track_offsets(self) -> None:
        """Move each DC bias estimate to this window's mean (call before clear())."""
        n = self.n
        if n == 0:
            return
        for k in range(self.nch):
            self.off[k] += _div_round(self.s1[k], n)
        self.voff += _div_round(self.vs1, n)


def _div_round(a: int, n: int) -> int:
    """a / n rounded half up, in integers (identical on every platform)."""
    return (2 * a + n) // (2 * n)


def burst(
    sums: Sums,
    reads: "tuple[Callable[[], int], ...]",
    vread: "Callable[[], int] | None",
    count: int,
) -> None:
    """Take `count` sample sets (voltage first, then every current channel) into sums."""
    if vread is None:
        vread = _zero
    limb = LIMB
    rail = RAIL
    nch = sums.nch
    off = sums.off
    phase = sums.phase
    s1 = sums.s1
    qh = sums.qh
    ql = sums.ql
    ph = sums.ph
    pl = sums.pl
    voff = sums.voff
    vs1 = sums.vs1
    vqh = sums.vqh
    vql = sums.vql
    vlh = sums.vlh
    vll = sums.vll
    clip = 0
    fresh = True
    vfirst = vprev = 0
    for _ in range(count):
        v = vread()
        if v <= 0 or v >= rail:
            clip += 1
        v -= voff
        if fresh:
            # The network ran since the last sample: a step from it would span the pause.
            vfirst = vprev = v
            fresh = False
        vs1 += v
        a = vql + v * v
        if a >= limb:
            a -= limb
            vqh += 1
        vql = a
        a = vll + v * vprev
        if a >= limb:
            a -= limb
            vlh += 1
        elif a <= -limb:
            a += limb
            vlh -= 1
        vll = a
        dv = v - vprev
        for k in range(nch):
            x = reads[k]()
            if x <= 0 or x >= rail:
                clip += 1
            x -= off[k]
            s1[k] += x
            a = ql[k] + x * x
            if a >= limb:
                a -= limb
                qh[k] += 1
            ql[k] = a
            # The channels are read one after another, later than the voltage sample: move
            # the voltage along its last step to line it up (emonLib's PHASECAL, fixed point).
            a = pl[k] + (vprev + ((phase[k] * dv) >> 8)) * x
            if a >= limb:
                a -= limb
                ph[k] += 1
            elif a <= -limb:
                a += limb
                ph[k] -= 1
            pl[k] = a
        vprev = v
    # This burst's steps start from v[first], v[first], v[first + 1] .. v[last - 1].
    sums.vp1 += vfirst - vprev
    a = sums.vpl + vfirst * vfirst - vprev * vprev
    if a >= limb:
        a -= limb
        sums.vph += 1
    elif a <= -limb:
        a += limb
        sums.vph -= 1
    sums.vpl = a
    sums.n += count
    sums.clip += clip
    sums.vs1 = vs1
    sums.vqh = vqh
    sums.vql = vql
    sums.vlh = vlh
    sums.vll = vll
