"""How amounts are rounded for the ledger and the export (the accountant's precision rules)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

KWH_DECIMALS = 3  # 1 Wh: finer than any clip-on sensor measures
HOURS_DECIMALS = 4  # 0.36 s
MONEY_DECIMALS = 2  # cents


_NANO = Decimal("1e-9")


def _decimal(x: float) -> Decimal:
    # The engine computes in binary floating point: 7/60 kWh at 0.30 comes out as
    # 0.034999999999999996, not 0.035. Cutting to 9 decimals first (far below a cent or a
    # Wh, far above float noise) gives back the exact value, which then rounds half up
    # the way the accountant computes it by hand: 0.035 -> 0.04, 2.675 -> 2.68.
    return Decimal(repr(float(x))).quantize(_NANO, rounding=ROUND_HALF_EVEN)


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cents(amount: float) -> int:
    """Money to integer cents, half up (away from zero), as the accountant rounds."""
    return _cents(_decimal(amount))


def energy_cents(band_wh: Iterable[float], rates: Iterable[float], spot: float = 0.0) -> int:
    """The energy cost of a line in cents: each band's printed kWh x its rate, plus the spot
    part (priced per price slot, docs/tariffs.md), then rounded once.

    Pricing the printed kWh (not the unrounded energy) lets anyone check a line with a
    calculator: 3.396 kWh x 0.24 = 0.81504 -> 0.82.
    """
    priced = (kwh(wh) * _decimal(rate) for wh, rate in zip(band_wh, rates, strict=True))
    return _cents(sum(priced, _decimal(spot)))


def hour_cents(seconds: float, rate: float) -> int:
    """A machine-hour cost in cents: the printed hours x the rate per hour, rounded once.

    As for energy, the printed hours (not the unrounded run time) are priced, so a line
    checks with a calculator: 1.3208 h x 1.20 = 1.58496 -> 1.58.
    """
    return _cents(hours(seconds) * _decimal(rate))


def kwh(wh: float) -> Decimal:
    """Wh to kWh with KWH_DECIMALS, half up: the value the export prints."""
    return (_decimal(wh) / 1000).quantize(Decimal(10) ** -KWH_DECIMALS, rounding=ROUND_HALF_UP)


def hours(seconds: float) -> Decimal:
    """Seconds to hours with HOURS_DECIMALS, half up: the value the export prints."""
    return (_decimal(seconds) / 3600).quantize(
        Decimal(10) ** -HOURS_DECIMALS, rounding=ROUND_HALF_UP
    )


def money(cents_: int) -> Decimal:
    """Integer cents as a Decimal amount with two decimals."""
    return Decimal(cents_).scaleb(-MONEY_DECIMALS)
