"""Prices from the price list, worked by hand: the same cents as a calculator gives."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.config import MachinePrice
from gateway.engine.pricing import price_cents, vat_cents


@pytest.mark.parametrize(
    ("rule", "run_h", "job_h", "energy_cents", "expected"),
    [
        # 15.00 + 60.00 x 1.2500 job hours = 90.00
        (MachinePrice(per_hour=60, setup_fee=15), "1.0000", "1.2500", 42, 9000),
        # on run hours: 15.00 + 60.00 x 1.0000 = 75.00
        (MachinePrice(per_hour=60, setup_fee=15, hours="run_hours"), "1.0000", "1.2500", 42, 7500),
        # energy passed on with 20 %: 48.5 x 0.3333 = 16.16505; + 0.42 x 1.2 = 0.504 -> 16.67
        (MachinePrice(per_hour=48.5, energy_markup=0.2), "0", "0.3333", 42, 1667),
        # at cost: 10.00 x 0.5 + 1.37 = 6.37
        (MachinePrice(per_hour=10, energy_markup=0), "0", "0.5000", 137, 637),
        # below the minimum: 25.00
        (MachinePrice(per_hour=60, minimum=25), "0", "0.1000", 0, 2500),
        # half a cent rounds up: 0.70 x 0.0500 = 0.035 -> 0.04 (a float gives 0.03499...)
        (MachinePrice(per_hour=0.7), "0", "0.0500", 0, 4),
    ],
)
def test_price_of_one_job(
    rule: MachinePrice, run_h: str, job_h: str, energy_cents: int, expected: int
) -> None:
    assert price_cents(rule, Decimal(run_h), Decimal(job_h), energy_cents) == expected


def test_vat_is_rounded_once_on_the_net_total() -> None:
    # 19 % of 123.45 = 23.4555 -> 23.46; of 0.05 = 0.0095 -> 0.01
    assert vat_cents(12345, 0.19) == 2346
    assert vat_cents(5, 0.19) == 1
    assert vat_cents(12345, 0.0) == 0
