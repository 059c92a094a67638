"""How amounts are rounded for the ledger and the export (the accountant's precision rules)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

KWH_DECIMALS = 3  # 1 Wh: finer than any clip-on sensor measures
HOURS_DECIMALS = 4  # 0.36 s
MONEY_DECIMALS = 2  # cents


def _decimal(x: float) -> Decimal:
    # repr() is the shortest text that reads back as the same float, i.e. the value a person
    # sees; rounding that (not the binary expansion) makes 2.675 round up to 2.68.
    return Decimal(repr(float(x)))


def cents(amount: float) -> int:
    """Money to integer cents, half up (away from zero), as the accountant rounds."""
    return int((_decimal(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


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
