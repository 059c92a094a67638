"""Cumulative energy counters, exact in integers: nothing is rounded away between windows.

A window adds p * w of energy, with p in 0.1 W and w in ms: one unit of that product is
1/36000 mWh. The counter keeps whole mWh plus the remainder (0..35999) carried to the next
window, so the counter of a channel is exactly the sum of its readings' p * w (see
docs/protocol.md, Counters), on every platform, at any size.
"""

UNITS_PER_MWH = 36000  # (0.1 W) * ms per mWh


class Counters:
    """Energy counters of all channels: whole mWh and the carried remainder."""

    def __init__(self, nch: int) -> None:
        self.mwh = [0] * nch
        self.rem = [0] * nch

    def add(self, k: int, dw: int, w_ms: int) -> None:
        """Add the energy of mean power dw (0.1 W) held for w_ms to channel k."""
        if dw <= 0:
            # Import only: noise around zero or a reversed clamp never runs a counter back.
            return
        total = self.rem[k] + dw * w_ms
        self.mwh[k] += total // UNITS_PER_MWH
        self.rem[k] = total % UNITS_PER_MWH

    def set(self, k: int, mwh: int) -> None:
        """Take a meter's own counter for channel k (the meter integrates, not us)."""
        self.mwh[k] = mwh
        self.rem[k] = 0
