"""A live run of the virtual shop: its options, its simulated clock and what it reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from gateway.engine.model import ExplicitJob


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run the virtual shop (the `python -m agent simulate` options)."""

    host: str
    port: int
    duration_s: float  # simulated seconds
    rate_hz: float = 0.1  # readings per sensor per simulated second (window = 1 / rate)
    speed: float = 1.0  # simulated seconds per wall second
    start_ms: int | None = None  # simulated UTC start; None: now
    seed: int = 7
    sensors: int | None = None  # the first N sensors of shop.toml; None: all
    schedule: Path | None = None  # jobs.csv replacing the generated jobs of its machines
    flash_dir: Path | None = None  # the sensors' flash as files (one folder per sensor)
    drain_s: float = 30.0  # wall seconds to wait at the end for backlogs to be delivered

    @property
    def window_ms(self) -> int:
        """The sensors' window length."""
        return round(1000 / self.rate_hz)


class SimClock:
    """Simulated UTC time, running `speed` times faster than the wall clock."""

    def __init__(self, start_ms: int, speed: float, behind_s: float = 0.0) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self.wall0 = time.monotonic() - behind_s  # start_ms was behind_s wall seconds ago

    def now_ms(self) -> int:
        """The simulated time now."""
        return self.start_ms + int((time.monotonic() - self.wall0) * self.speed * 1000)

    def wall_until(self, sim_ms: int) -> float:
        """Wall seconds until the simulated time reaches sim_ms (<= 0: already)."""
        return (sim_ms - self.now_ms()) / 1000 / self.speed


@dataclass(frozen=True, slots=True)
class MachineReport:
    """What one machine's sensor did in a run, and the truth to judge the gateway by."""

    machine: str
    source: str  # the sensor's or meter's id
    explicit: bool  # its jobs came as job events
    readings: int  # windows the firmware closed (a meter: requests it answered or not)
    buffered: int  # readings delivered from the flash ring (after an outage, or queued)
    backlog: int  # readings never acknowledged by the broker (still buffered at the end)
    boots: int  # the sensor's boot counter at the end
    energy_wh: float  # true energy from the run's start to its end
    unmeasured_wh: float  # true energy while the sensor had no power (reboots)
    jobs: tuple[ExplicitJob, ...]  # scheduled jobs that lie wholly inside the run
    job_wh: tuple[float, ...]  # their true energy


@dataclass(frozen=True, slots=True)
class RunReport:
    """A finished run."""

    start_ms: int
    end_ms: int
    wall_s: float
    max_lag_s: float  # the latest a window was closed after its due time (wall seconds)
    job_events: int  # job events acknowledged by the broker
    machines: dict[str, MachineReport]

    @property
    def readings(self) -> int:
        """All readings made."""
        return sum(m.readings for m in self.machines.values())

    @property
    def delivered(self) -> bool:
        """Every reading reached the broker."""
        return all(m.backlog == 0 for m in self.machines.values())
