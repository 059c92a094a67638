"""One simulated shop day: config, readings and jobs for the demo, and the truth for tests."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from agent.power import PowerSeries, simulate_power
from agent.profile import Profile, builtin_profile
from agent.readingsfile import write_readings_csv
from agent.schedule import generate_jobs, write_jobs_csv
from agent.sensor import Outage, SensorView, observe
from agent.shopplan import PlannedMachine, ShopPlan, load_plan
from agent.shoptoml import plan_machine, shop_toml
from gateway.config import hhmm_minutes
from gateway.engine.localtime import local_minute_to_utc_ms
from gateway.engine.model import ExplicitJob, MachineReadings
from gateway.errors import InputError
from gateway.inputs.csvfile import read_jobs

# The first words of every simulated shop.toml: how the demo knows a folder is its own.
DEMO_HEADER = "# shop.toml of the simulated shop day"
DEMO_DAY = dt.date(2026, 11, 17)  # a Tuesday: the weekday peak band applies
REBOOT_S = 20  # a sensor's restart: boot, Wi-Fi, MQTT; no readings meanwhile


@dataclass(frozen=True, slots=True)
class MachineTruth:
    """What really happened on one machine, to check the pipeline's answers against."""

    profile: str
    explicit: bool  # its jobs are in jobs.csv; otherwise the engine has to detect them
    counter: bool  # its readings carry a Wh counter
    jobs: tuple[ExplicitJob, ...]  # first to last running second; detected ids as the engine's
    job_wh: tuple[float, ...]  # true energy from each job's start to its end
    energy_wh: float  # true energy from the day's first reading to its last
    outages: tuple[Outage, ...]  # lost readings, with the true energy inside each


@dataclass(frozen=True)
class ShopDay:
    """A simulated day of a whole shop."""

    config_toml: str  # a complete shop.toml for this shop
    day: dt.date
    seed: int
    tz: ZoneInfo
    power: Mapping[str, PowerSeries]  # true power per machine, 1 reading per step
    sensors: Mapping[str, SensorView]  # what each machine's sensor delivered of it
    truth: Mapping[str, MachineTruth]

    def readings(self) -> dict[str, MachineReadings]:
        """The delivered readings per machine, in the engine's shape."""
        return {m: s.readings(self.power[m]) for m, s in self.sensors.items()}

    def readings_csv(self, path: Path) -> int:
        """Write readings.csv (`time,machine,watts,wh`); returns the number of rows."""
        return write_readings_csv(path, self.readings())

    def jobs_csv(self, path: Path) -> int:
        """Write jobs.csv with the jobs of the machines that book them; returns rows."""
        explicit = {m: t.jobs for m, t in self.truth.items() if t.explicit}
        return write_jobs_csv(path, explicit, self.tz)

    def prices_csv(self, path: Path) -> int:
        """Write a day-ahead price file (plain `start,price`, EUR/MWh per quarter hour) for
        the day: cheap at night, dearer in the morning and evening; returns the slots."""
        first = local_minute_to_utc_ms(self.day, 0, self.tz)
        end = local_minute_to_utc_ms(self.day + dt.timedelta(days=1), 0, self.tz)
        starts = np.arange(first, end, 15 * 60_000, dtype=np.int64)
        hours = (starts - first) / 3_600_000
        rng = np.random.default_rng(self.seed)
        price = (
            70.0
            + 45.0 * np.exp(-(((hours - 8.0) / 2.0) ** 2))
            + 60.0 * np.exp(-(((hours - 18.5) / 2.0) ** 2))
            + rng.normal(0.0, 4.0, len(starts))
        )
        lines = ["start,price"] + [
            f"{dt.datetime.fromtimestamp(t / 1000, self.tz).isoformat()},{p:.2f}"
            for t, p in zip(starts.tolist(), price.tolist(), strict=True)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return len(starts)


def _check_jobs(machine: str, jobs: list[ExplicitJob], t_ms: npt.NDArray[np.int64]) -> None:
    """Scheduled jobs must close inside the simulated day."""
    first, last = int(t_ms[0]), int(t_ms[-1])
    for job in jobs:
        if not first < job.start_ms < job.end_ms < last:
            raise InputError(
                f"job {job.job_id!r} on {machine}: must start after the day's first second "
                "and end before its last"
            )


@dataclass(frozen=True, slots=True)
class _Day:
    """The simulated day's grid and local calendar."""

    date: dt.date
    tz: ZoneInfo
    t_ms: npt.NDArray[np.int64]
    step_ms: int

    def local(self, hhmm: str) -> int:
        """A local wall time of the day -> UTC ms, by the engine's DST rule."""
        return local_minute_to_utc_ms(self.date, hhmm_minutes(hhmm), self.tz)

    def at(self, ms: int) -> int:
        """UTC ms -> index of the sample at or before it."""
        return (ms - int(self.t_ms[0])) // self.step_ms

    def snap(self, job: ExplicitJob) -> ExplicitJob:
        """The job with its times on the grid, so truth and series agree exactly."""
        t0, step = int(self.t_ms[0]), self.step_ms
        return replace(
            job, start_ms=t0 + self.at(job.start_ms) * step, end_ms=t0 + self.at(job.end_ms) * step
        )


def _simulate_machine(
    pm: PlannedMachine,
    profile: Profile,
    jobs: list[ExplicitJob],
    day: _Day,
    rng: np.random.Generator,
) -> tuple[PowerSeries, SensorView, MachineTruth]:
    """Power, sensor view and truth of one machine."""
    at = day.at
    spans = [(at(j.start_ms), at(j.end_ms)) for j in jobs]
    # Powered for the shift, longer when a booked job starts early or ends late.
    powered = (
        min([at(day.local(pm.shift[0])), *(s for s, _ in spans)]),
        max([at(day.local(pm.shift[1])), *(e + 1 for _, e in spans)]),
    )
    power = simulate_power(profile, day.t_ms, powered, spans, rng)
    down = -(-REBOOT_S * 1000 // day.step_ms)
    sensor = observe(
        power,
        counter=pm.counter,
        # A counter that has been running for months before today.
        counter_start_wh=float(np.round(rng.uniform(2e5, 5e6), 3)),
        lost=[(at(day.local(a)), at(day.local(b))) for a, b in pm.outages],
        reboots=[(at(day.local(r)), at(day.local(r)) + down) for r in pm.reboots],
    )
    truth = MachineTruth(
        profile=pm.profile,
        explicit=pm.jobs == "explicit",
        counter=pm.counter,
        jobs=tuple(jobs),
        job_wh=tuple(power.between_wh(s, e) for s, e in spans),
        energy_wh=power.between_wh(0, len(day.t_ms) - 1),
        outages=sensor.outages,
    )
    return power, sensor, truth


def simulate_shop_day(
    seed: int = 7,
    day: dt.date = DEMO_DAY,
    *,
    plan: ShopPlan | None = None,
    schedule: Path | None = None,
    step_s: int = 1,
) -> ShopDay:
    """Simulate one local day of a shop (default: the demo shop), deterministic per seed.

    `schedule` (job_id,machine,start,end[,customer]) replaces the generated jobs of the
    machines it names.
    """
    plan = plan or load_plan()
    tz = plan.site.tz
    t0 = local_minute_to_utc_ms(day, 0, tz)
    t1 = local_minute_to_utc_ms(day, 24 * 60, tz)
    grid = _Day(day, tz, np.arange(t0, t1, step_s * 1000, dtype=np.int64), step_s * 1000)
    profiles = {pm.id: builtin_profile(pm.profile) for pm in plan.machine}
    configured = {pm.id: plan_machine(pm) for pm in plan.machine}
    booked = read_jobs(schedule, configured).jobs if schedule else {}
    work_orders = (f"WO-{day:%y%m%d}-{k:03d}" for k in itertools.count(1))

    power: dict[str, PowerSeries] = {}
    sensors: dict[str, SensorView] = {}
    truth: dict[str, MachineTruth] = {}
    for pm in plan.machine:
        # One stream per machine id: adding a machine leaves the others' days unchanged.
        rng = np.random.default_rng([seed, zlib.crc32(pm.id.encode())])
        ids: Iterator[str] = (
            work_orders
            if pm.jobs == "explicit"
            else (f"{pm.id}-{day:%Y%m%d}-{k:03d}" for k in itertools.count(1))
        )
        shift = (grid.local(pm.shift[0]), grid.local(pm.shift[1]))
        if pm.id in booked:
            jobs = [grid.snap(j) for j in booked[pm.id]]
        else:
            jobs = generate_jobs(profiles[pm.id].schedule, shift, rng, plan.customers, ids)
        _check_jobs(pm.id, jobs, grid.t_ms)
        power[pm.id], sensors[pm.id], truth[pm.id] = _simulate_machine(
            pm, profiles[pm.id], jobs, grid, rng
        )

    header = f"{DEMO_HEADER} {day} (seed {seed}), by agent.shopday\n\n"
    config = shop_toml(plan, list(configured.values()), header)
    return ShopDay(config, day, seed, tz, power, sensors, truth)
