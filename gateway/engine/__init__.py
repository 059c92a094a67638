"""The costing engine (numpy, pure): readings + config in, cost rows and energy stats out."""

from gateway.engine.compute import compute_machine, energy_stats
from gateway.engine.model import (
    CostRow,
    EnergyStats,
    ExplicitJob,
    MachineReadings,
    MachineResult,
)

__all__ = [
    "CostRow",
    "EnergyStats",
    "ExplicitJob",
    "MachineReadings",
    "MachineResult",
    "compute_machine",
    "energy_stats",
]
