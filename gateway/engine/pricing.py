"""What a job costs the customer: the price list applied to the printed hours and energy.

Pure arithmetic on the figures the export prints (hours to 4 decimals, energy cost in
cents), in Decimal, so that the accountant gets the same cents with a calculator:

    net = max(minimum, setup_fee + per_hour x hours + energy cost x (1 + energy_markup))

(the energy term only where the price list passes energy on). One rounding, half up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from gateway.config import MachinePrice

_CENT = Decimal("0.01")


def _exact(x: float) -> Decimal:
    """A shop.toml number as the decimal its author wrote (0.1, not 0.1000000000000000055)."""
    return Decimal(repr(x))


def price_cents(rule: MachinePrice, run_h: Decimal, job_h: Decimal, energy_cents: int) -> int:
    """The net price of one job in cents."""
    hours = job_h if rule.hours == "job_hours" else run_h
    net = _exact(rule.setup_fee) + _exact(rule.per_hour) * hours
    if rule.energy_markup is not None:
        net += Decimal(energy_cents) / 100 * (1 + _exact(rule.energy_markup))
    net = max(net, _exact(rule.minimum))
    return int(net.quantize(_CENT, rounding=ROUND_HALF_UP) * 100)


def vat_cents(net_cents: int, vat_rate: float) -> int:
    """VAT on a statement's net total, rounded once, half up."""
    vat = Decimal(net_cents) * _exact(vat_rate) / 100
    return int(vat.quantize(_CENT, rounding=ROUND_HALF_UP) * 100)
