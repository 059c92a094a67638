"""The engine's inputs and outputs: plain arrays and small frozen records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
class ReadingRows:
    """Readings of several machines in the order they were read: any time order, repeats."""

    machine: I64  # index into the shop's machines, in shop.toml order
    t_ms: I64
    watts: F64
    wh: F64

    def __len__(self) -> int:
        return len(self.t_ms)


@dataclass(frozen=True, slots=True)
class FirstOfTimes:
    """Readings sorted by time with the first of equal times kept, and what was dropped."""

    readings: MachineReadings
    dropped: int  # rows repeating an earlier row's time
    conflicts: int  # of those, rows whose watts or wh differ from the kept row


def first_of_times(t_ms: I64, watts: F64, wh: F64) -> FirstOfTimes:
    """Sort rows by time, keep the first row (in the given order) of equal times.

    The one rule for a reading seen twice: files, live batches and the ledger's blocks all
    keep what came first, and count the repeats whose values differ (conflicts).
    """
    order = np.argsort(t_ms, kind="stable")  # stable: the earlier row wins a tie
    t, watts, wh = t_ms[order], watts[order], wh[order]
    dup = np.zeros(len(t), dtype=bool)
    dup[1:] = t[1:] == t[:-1]
    conflicts = 0
    if dup.any():  # the common case (no repeats) skips the work below
        kept_at = np.maximum.accumulate(np.where(dup, 0, np.arange(len(dup))))
        same_wh = (wh == wh[kept_at]) | (np.isnan(wh) & np.isnan(wh[kept_at]))
        conflicts = int((dup & ((watts != watts[kept_at]) | ~same_wh)).sum())
    keep = ~dup
    return FirstOfTimes(MachineReadings(t[keep], watts[keep], wh[keep]), int(dup.sum()), conflicts)


@dataclass(frozen=True, slots=True)
class ExplicitJob:
    """A job given by the operator (jobs.csv or the MQTT job topic); it takes its span."""

    job_id: str
    start_ms: int
    end_ms: int
    customer: str = ""
    parts: int = 0  # good parts, as the stop said (0: not known); the ledger keeps them
    card: str = ""  # the UID of the card a sensor's reader started it with (a member's)


@dataclass(frozen=True, slots=True)
class PriceSlots:
    """A price series: sorted, non-overlapping slots [start_ms, end_ms), price per slot in
    the unit of the file it came from (Spot.factor converts)."""

    start_ms: I64
    end_ms: I64
    price: F64


NO_SLOTS = PriceSlots(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


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
    # Machine-hour rates per hour (0 on overhead rows). Not priced here: the ledger prices
    # the printed hours (ledger.units.hour_cents), as it does the printed kWh.
    depreciation_per_h: float
    maintenance_per_h: float
    open: bool = False  # a job still running at the end of the data: not final yet
    # Which hours depreciation is charged on: run_s, or the job's duration (end - start).
    depreciation_basis: Literal["run_hours", "job_hours"] = "run_hours"
    # Energy per priced column (tariff version x band), aligned with Tariff.columns: what
    # the energy cost is priced from. Empty on rows read back from the ledger (and on rows
    # built by hand for a tariff without versions, where the columns are the bands).
    priced_wh: tuple[float, ...] = ()
    # With a spot price ([tariff.spot]): the spot part of the energy cost (unrounded, added
    # to the priced columns' cost by the ledger) and the energy priced at its fallback.
    spot_cost: float = 0.0
    fallback_wh: float = 0.0

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
    # Energy of each interval between consecutive readings: the ledger keeps its quarter
    # hours for the month's demand peak (ledger/quarters.py).
    interval_wh: F64 = field(default_factory=lambda: np.zeros(0))


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
