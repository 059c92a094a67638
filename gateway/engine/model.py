"""The engine's inputs and outputs: plain arrays and small frozen records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MachineReadings:
    """One machine's readings, sorted by time with unique times (the inputs' job)."""

    t_ms: I64  # UTC, milliseconds since the epoch
    watts: F64  # mean power of the reading
    wh: F64  # cumulative energy counter; NaN where the reading carries none

    def __len__(self) -> int:
        return len(self.t_ms)


@dataclass(frozen=True, slots=True)
class ExplicitJob:
    """A job given by the operator (jobs.csv or the MQTT job topic); it takes its span."""

    job_id: str
    start_ms: int
    end_ms: int
    customer: str = ""
    parts: int = 0  # good parts, as the stop said (0: not known); the ledger keeps them


@dataclass(frozen=True, slots=True)
class CostRow:
    """One row of the ledger/export: a job, or a machine's energy outside jobs on one day."""

    kind: Literal["job", "overhead"]
    job_id: str  # overhead rows: ""
    machine: str
    customer: str
    start_ms: int  # overhead rows: local midnight that starts the day (UTC ms)
    end_ms: int  # overhead rows: the next local midnight
    day: date  # local date that decides the period: a job's end date, an overhead row's day
    run_s: float  # seconds in the running state (0 for overhead rows)
    band_wh: tuple[float, ...]  # energy per tariff band, aligned with Tariff.band_names
    depreciation_cost: float
    maintenance_cost: float
    open: bool = False  # a job still running at the end of the data: not final yet

    @property
    def energy_wh(self) -> float:
        """All energy of the row."""
        return float(sum(self.band_wh))


@dataclass(frozen=True, slots=True)
class EnergyStats:
    """What the energy step had to repair or could not know; every case is counted."""

    samples: int
    metered_wh: float  # all energy between first and last reading: the rows add up to this
    counter_resets: int  # counter went down (reboot, meter wrap)
    implausible_jumps: int  # counter step above rated_w for the elapsed time
    gaps: int  # intervals longer than max_gap_s with no usable counter: energy unknown
    gap_s: float  # total length of those intervals


@dataclass(frozen=True, slots=True)
class MachineResult:
    """The engine's answer for one machine."""

    rows: list[CostRow]
    stats: EnergyStats


@dataclass(frozen=True, slots=True)
class Reading:
    """One machine's power and energy at one instant, as one input saw it."""

    machine: str  # machine id from shop.toml
    sensor: str  # sensor / meter id, unique in the shop (the InfluxDB `sensor` tag)
    t_ms: int  # UTC, milliseconds since the epoch: when the value was measured (or polled)
    watts: float | None  # active power in W; None when this reading could not refresh it
    wh: float | None  # cumulative energy counter in Wh; None when not carried or not refreshed
    # True when a value this source normally carries could not be refreshed: the missing
    # value is None, never the previous one repeated (a repeated value would look like a
    # machine holding steady power while the meter is actually unreachable).
    stale: bool = False
    source: str = ""  # which input and device produced it, e.g. "modbus:tcp:10.0.0.5:502/1"


# Counters per source (a device, a sensor, or the input itself), e.g.
# {"modbus:tcp:10.0.0.5:502/1": {"polls": 120, "transport_errors": 3, ...}}.
Stats = Mapping[str, Mapping[str, int]]
