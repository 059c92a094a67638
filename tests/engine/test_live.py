"""The live picture's cost per minute: band rate plus the spot price of the slot in force."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.config import Machine, MachineCost, Spot, Tariff
from gateway.engine.live import LiveView, advance, minute_energy
from gateway.engine.model import MachineReadings, PriceSlots

UTC = ZoneInfo("UTC")
NOON = 1_793_707_200_000  # 2026-11-03T12:00:00Z, a slot edge (quarter hours)
MILL = Machine(
    id="mill",
    off_below_w=20,
    run_above_w=500,
    rated_w=8000,
    cost=MachineCost(purchase=30000, life_hours=10000),
)
# 0.10/kWh on top of the spot price; the file's EUR/MWh x 0.001; 0.30/kWh without a slot.
TARIFF = Tariff(id="t", rate=0.10, spot=Spot(series="epex", factor=0.001, fallback=0.30))
# 120 EUR/MWh in the quarter hour before noon; the one from noon is missing.
PRICES = {"epex": PriceSlots(np.array([NOON - 900_000]), np.array([NOON]), np.array([120.0]))}


def _readings(*t_s: int) -> MachineReadings:
    """6 kW steady from NOON + t_s[0] s (counter in Wh: 100 Wh a minute)."""
    t = NOON + np.array(t_s, dtype=np.int64) * 1000
    return MachineReadings(t, np.full(len(t), 6000.0), (t - t[0]) / 3_600_000 * 6000.0)


def test_a_minute_costs_its_band_rate_plus_the_spot_price_of_each_slot_it_touches() -> None:
    # One reading interval 11:59:30 -> 12:00:30 crosses both a minute and the slot edge.
    minutes, wh, cost = minute_energy(MILL, TARIFF, UTC, _readings(-30, 30), PRICES)
    assert minutes.tolist() == [NOON - 60_000, NOON]
    assert wh[:, 0].tolist() == pytest.approx([50.0, 50.0])
    # 11:59: 0.05 kWh x (0.10 + 120 x 0.001); 12:00: no slot, 0.05 kWh x (0.10 + 0.30).
    assert cost[:, 0].tolist() == pytest.approx([0.011, 0.020])


def test_a_minute_split_over_two_batches_costs_what_it_costs_seen_whole() -> None:
    whole = advance(MILL, TARIFF, UTC, _readings(-30, 0, 30, 60), LiveView(), PRICES)
    first = advance(MILL, TARIFF, UTC, _readings(-30, 0, 30), LiveView(), PRICES)
    assert whole is not None and first is not None
    second = advance(MILL, TARIFF, UTC, _readings(-30, 0, 30, 60), first.view, PRICES)
    assert second is not None
    assert second.minutes.tolist() == [NOON]
    assert second.band_cost[0, 0] == pytest.approx(whole.band_cost[1, 0]) == pytest.approx(0.04)
