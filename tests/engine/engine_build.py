"""Small builders for engine tests: a machine, a tariff, readings from plain lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gateway.config import Machine, MachineCost, Tariff
from gateway.engine import MachineReadings

# 2026-11-03 08:00 Europe/Berlin (a Tuesday), in UTC ms
T0_MS = 1_793_689_200_000


def machine(**overrides: Any) -> Machine:
    """A 5 kW machine: off < 50 W, running > 1000 W, depreciation 1.00/h."""
    fields: dict[str, Any] = {
        "id": "m",
        "off_below_w": 50,
        "run_above_w": 1000,
        "min_job_s": 60,
        "merge_gap_s": 300,
        "max_gap_s": 120,
        "rated_w": 5000,
        "cost": MachineCost(purchase=3600, life_hours=3600),
    }
    fields.update(overrides)
    return Machine(**fields)


def flat_tariff(rate: float = 0.30) -> Tariff:
    """One rate around the clock."""
    return Tariff(id="flat", rate=rate)


def readings(
    t_s: Sequence[float], watts: Sequence[float], wh: Sequence[float] | None = None
) -> MachineReadings:
    """Readings at T0 + t_s seconds; wh None means no counter at all."""
    t = T0_MS + np.round(np.asarray(t_s, dtype=np.float64) * 1000).astype(np.int64)
    counter = np.full(len(t), np.nan) if wh is None else np.asarray(wh, dtype=np.float64)
    return MachineReadings(t, np.asarray(watts, dtype=np.float64), counter)
