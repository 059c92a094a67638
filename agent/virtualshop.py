"""The virtual shop, live: its sensors publish the real protocol to a real broker.

Every machine of shop.toml that has a [[machine.sensor]] gets a `VirtualSensor` (the
firmware on a simulated HAL) fed from its plan machine's true power, and an MQTT session;
every [[machine.meter]] a simulated Modbus meter (agent.meterbus, real-time runs only).
Simulated time runs `speed` times faster than the wall clock from `start_ms`; a window
closes when simulated time passes its end. The plan's outages switch a sensor's Wi-Fi off
(it keeps measuring into its offline ring and replays when back), its reboots cut the
sensor's power for 20 s (boot counter +1, counters restored from flash, seq from 0), and
machines with booked jobs get start/stop events from an operator panel.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from agent.feeds import JobPanel, SensorFeed
from agent.liverun import MachineReport, RunOptions, RunReport, SimClock
from agent.meterbus import MeterBus
from agent.mqttlink import NetLoop, Session
from agent.profile import builtin_profile
from agent.shopday import REBOOT_S
from agent.shopplan import ShopPlan
from agent.shoptoml import LiveMachine, find_live_machine
from agent.timeline import ShopTimeline
from agent.virtualsensor import VirtualSensor, firmware_config
from agent.waveform import burst_moments, choose_front_end
from firmware import encode
from gateway.config import ShopConfig, hhmm_minutes
from gateway.engine.localtime import local_minute_to_utc_ms
from gateway.engine.model import ExplicitJob
from gateway.errors import ConfigError

_BATCH = 200  # events handled between two network polls, so acks keep flowing under load
_POLL_MAX_S = 0.05
_KEEPALIVE_EVERY_S = 1.0


@dataclass
class _Live:
    """One simulated machine: its plan machine, sensor, feed and session."""

    live: LiveMachine
    sensor: VirtualSensor
    feed: SensorFeed
    session: Session
    generation: int = 0  # +1 per boot: windows scheduled by an earlier boot are void
    down_since: int | None = None  # sim ms of the power cut while the sensor is off
    unpowered: list[tuple[int, int]] = field(default_factory=list)  # (cut, back) sim ms


class VirtualShop:
    """The live shop for one shop.toml and its plan."""

    def __init__(self, cfg: ShopConfig, plan: ShopPlan, opts: RunOptions) -> None:
        if not 0 < opts.rate_hz <= 1:
            raise ConfigError(f"--rate {opts.rate_hz}: must be above 0 and at most 1 Hz")
        if opts.speed <= 0 or opts.duration_s <= 0:
            raise ConfigError(f"--speed {opts.speed}, --duration {opts.duration_s}: must be > 0")
        if cfg.site.id != plan.site.id or cfg.site.timezone != plan.site.timezone:
            raise ConfigError(
                f"{cfg.source}: site {cfg.site.id!r} ({cfg.site.timezone}) is not the plan's "
                f"site {plan.site.id!r} ({plan.site.timezone})"
            )
        self.cfg = cfg
        self.plan = plan
        self.opts = opts
        self.timeline = ShopTimeline(plan, opts.seed, opts.schedule)
        start = opts.start_ms if opts.start_ms is not None else int(time.time()) * 1000
        self.start_ms = start - start % 1000  # windows end on whole seconds
        self.end_ms = self.start_ms + round(opts.duration_s * 1000)
        self.clock = SimClock(self.start_ms, opts.speed)
        self.net = NetLoop()
        self.machines = [self._live(m) for m in self._sensor_machines()]
        self.meters = MeterBus(cfg, plan, self.timeline, self.now_ms, opts.seed)
        if self.meters.machines and opts.speed != 1:
            raise ConfigError(
                f"{cfg.source}: meters {', '.join(self.meters.machines)}: the gateway polls "
                f"meters on its own clock, so they need --speed 1 (not {opts.speed:g})"
            )
        self.panel = JobPanel(cfg.site.id)
        self.panel_session = Session(
            self.net, f"shopwatt-panel-{cfg.site.id}", opts.host, opts.port, self.panel
        )
        self._events: list[tuple[int, int, Callable[[int], None]]] = []
        self._order = itertools.count()
        self.max_lag_s = 0.0

    def now_ms(self) -> int:
        """The simulated time now."""
        return self.clock.now_ms()

    def _sensor_machines(self) -> list[LiveMachine]:
        wanted = [m for m in self.cfg.machine if m.sensor]
        n = self.opts.sensors
        if n is not None and n > len(wanted):
            raise ConfigError(
                f"{self.cfg.source}: --sensors {n}, but only {len(wanted)} machines have a "
                "[[machine.sensor]] (write a bigger shop: python -m agent shop --sensors N)"
            )
        return [find_live_machine(self.plan, m) for m in wanted[:n]]

    def _live(self, lm: LiveMachine) -> _Live:
        profile = builtin_profile(lm.planned.profile)
        # Each sensor's own stream (bias, noise): adding sensors leaves the others unchanged.
        rng = np.random.default_rng([self.opts.seed, zlib.crc32(lm.machine.id.encode()), 1])
        front = choose_front_end(profile, rng)
        fwcfg = firmware_config(
            self.cfg.site.id, lm.machine.id, lm.source, self.opts.window_ms, front, self.opts.host
        )
        flash = None if self.opts.flash_dir is None else self.opts.flash_dir / lm.source
        sensor = VirtualSensor(fwcfg, profile, front, rng, flash)
        feed = SensorFeed(sensor, self.now_ms)
        session = Session(self.net, f"shopwatt-{lm.source}", self.opts.host, self.opts.port, feed)
        return _Live(lm, sensor, feed, session)

    # -- events -----------------------------------------------------------------------------

    def _at(self, sim_ms: int, action: Callable[[int], None]) -> None:
        if sim_ms <= self.end_ms:
            heapq.heappush(self._events, (sim_ms, next(self._order), action))

    def _boot(self, m: _Live, now: int, soft: bool = False) -> None:
        """Start the sensor (after power comes back, or a reset with power kept)."""
        if soft:
            m.sensor.soft_reset(now)
        else:
            m.sensor.power_on(now)
        m.generation += 1
        m.session.wanted = m.sensor.hal.wifi
        m.session.retry_at = 0.0
        self._window(m, m.generation, now + self.opts.window_ms)
        self._status(m, m.generation, now + m.sensor.cfg.status_s * 1000)

    def _window(self, m: _Live, generation: int, end_ms: int) -> None:
        def close(now: int) -> None:
            if m.generation != generation or not m.sensor.powered:
                return  # the boot that scheduled this window is over
            self.max_lag_s = max(self.max_lag_s, -self.clock.wall_until(end_ms))
            moments = burst_moments(end_ms, self.opts.window_ms)
            watts, state = self.timeline.power_at(m.live.planned.id, moments)
            m.sensor.measure(end_ms, watts, state)
            self._window(m, generation, end_ms + self.opts.window_ms)

        self._at(end_ms, close)

    def _status(self, m: _Live, generation: int, at_ms: int) -> None:
        def publish(now: int) -> None:
            if m.generation == generation and m.sensor.powered:
                m.feed.publish_status()
                self._status(m, generation, now + m.sensor.cfg.status_s * 1000)

        self._at(at_ms, publish)

    def _wifi(self, m: _Live, up: bool) -> Callable[[int], None]:
        def switch(now: int) -> None:
            m.sensor.set_wifi(up, now)
            m.session.wanted = up and m.sensor.powered
            if up:
                m.session.retry_at = 0.0  # Wi-Fi back: connect at once, as the firmware does
            else:
                m.session.drop()

        return switch

    def _power_cut(self, m: _Live) -> Callable[[int], None]:
        def cut(now: int) -> None:
            if not m.sensor.powered:
                return
            m.sensor.power_cut()
            m.session.wanted = False
            m.session.drop()
            m.down_since = now
            self._at(now + REBOOT_S * 1000, self._power_back(m))

        return cut

    def _power_back(self, m: _Live) -> Callable[[int], None]:
        def back(now: int) -> None:
            assert m.down_since is not None
            m.unpowered.append((m.down_since, now))
            m.down_since = None
            self._boot(m, now)

        return back

    def _day(self, date: dt.date) -> Callable[[int], None]:
        """Schedule one local day's outages, reboots and job events; then the next day."""

        def load(now: int) -> None:
            tz = self.plan.site.tz

            def local(hhmm: str) -> int:
                return local_minute_to_utc_ms(date, hhmm_minutes(hhmm), tz)

            day = self.timeline.day(date)
            for m in self.machines:
                for a, b in m.live.planned.outages:
                    if local(b) > now:
                        self._at(max(local(a), now), self._wifi(m, False))
                        self._at(local(b), self._wifi(m, True))
                for r in m.live.planned.reboots:
                    if local(r) >= now:
                        self._at(local(r), self._power_cut(m))
            for mid, metered in self.meters.machines.items():
                for a, b in metered.live.planned.outages:
                    if local(b) > now:
                        self._at(max(local(a), now), self._silent(mid, True))
                        self._at(local(b), self._silent(mid, False))
            for live in self._live_machines():
                if live.planned.jobs == "explicit":
                    for job in _replica_jobs(day.truth[live.planned.id].jobs, live.replica):
                        if job.start_ms >= now:
                            self._at(job.start_ms, self._job(live.machine.id, job, "start"))
                            self._at(job.end_ms, self._job(live.machine.id, job, "stop"))
            self._at(
                local_minute_to_utc_ms(date + dt.timedelta(days=1), 0, tz),
                self._day(date + dt.timedelta(days=1)),
            )

        return load

    def _job(self, machine: str, job: ExplicitJob, event: str) -> Callable[[int], None]:
        def queue(_now: int) -> None:
            self.panel.add(machine, job, event)

        return queue

    def _silent(self, machine: str, silent: bool) -> Callable[[int], None]:
        def switch(_now: int) -> None:
            self.meters.silence(machine, silent)

        return switch

    def _live_machines(self) -> list[LiveMachine]:
        return [*(m.live for m in self.machines), *(m.live for m in self.meters.machines.values())]

    # -- running ----------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> RunReport:
        """Run to the end of the simulated span (or until `stop` is set); then report."""
        stop = stop or threading.Event()
        wall0 = time.monotonic()
        # A run that starts "now" keeps simulated time equal to UTC (meters are polled on it).
        behind_s = time.time() - self.start_ms / 1000 if self.opts.start_ms is None else 0.0
        self.clock = SimClock(self.start_ms, self.opts.speed, behind_s)
        for m in self.machines:
            self._boot(m, self.start_ms)
        self._day(self.timeline.local_date(self.start_ms))(self.start_ms)
        last_keepalive = 0.0
        self.meters.start(self.start_ms)
        try:
            while not stop.is_set():
                now = self.clock.now_ms()
                for _ in range(_BATCH):  # every event is at or before end_ms (see _at)
                    if not self._events or self._events[0][0] > now:
                        break
                    t, _, action = heapq.heappop(self._events)
                    action(t)
                if not self._events and now >= self.end_ms:
                    break
                upcoming = self._events[0][0] if self._events else self.end_ms
                wait = min(max(self.clock.wall_until(upcoming), 0.0), _POLL_MAX_S)
                last_keepalive = self._network(wait, last_keepalive)
            self._drain(stop)
        finally:
            self._goodbye()
            self.meters.stop()
        return self._report(time.monotonic() - wall0)

    def _sessions(self) -> list[Session]:
        return [*(m.session for m in self.machines), self.panel_session]

    def _network(self, wait_s: float, last_keepalive: float) -> float:
        now = time.monotonic()
        for s in self._sessions():
            s.maintain(now)
            s.pump()
        self.net.poll(wait_s)
        for m in self.machines:
            if m.feed.reboot_requested:
                m.feed.reboot_requested = False
                _goodbye(m)
                self._boot(m, self.clock.now_ms(), soft=True)
        if now - last_keepalive >= _KEEPALIVE_EVERY_S:
            self.net.keepalive()
            return now
        return last_keepalive

    def _backlog(self) -> int:
        return sum(m.feed.backlog() for m in self.machines if m.session.wanted) + (
            self.panel.backlog()
        )

    def _drain(self, stop: threading.Event) -> None:
        """Give connected sensors time to deliver what they buffered."""
        deadline = time.monotonic() + self.opts.drain_s
        keepalive = 0.0
        while self._backlog() and time.monotonic() < deadline and not stop.is_set():
            keepalive = self._network(_POLL_MAX_S, keepalive)

    def _goodbye(self) -> None:
        """Sensors say offline themselves (retained) and disconnect, like a planned stop."""
        for m in self.machines:
            if m.sensor.powered:
                _goodbye(m)
        self.panel_session.close()
        self.net.close()

    def _report(self, wall_s: float) -> RunReport:
        machines = {}
        for m in self.machines:
            down = [*m.unpowered, *([(m.down_since, self.end_ms)] if m.down_since else [])]
            fw = m.sensor.fw
            machines[m.live.machine.id] = self._truth(
                m.live,
                down,
                readings=m.sensor.windows,
                buffered=m.feed.buffered,
                backlog=m.feed.backlog(),
                boots=0 if fw is None else fw.state.boot,
            )
        for mid, metered in self.meters.machines.items():
            polls = self.meters.requests(mid)
            machines[mid] = self._truth(metered.live, [], polls, buffered=0, backlog=0, boots=0)
        return RunReport(
            self.start_ms,
            self.end_ms,
            wall_s,
            self.max_lag_s,
            self.panel_session.published,
            machines,
        )

    def _truth(
        self,
        live: LiveMachine,
        unpowered: list[tuple[int, int]],
        readings: int,
        buffered: int,
        backlog: int,
        boots: int,
    ) -> MachineReport:
        """A machine's report: its source's counts and the true energy and jobs of the run."""
        pm = live.planned
        jobs: list[ExplicitJob] = []
        for date in _dates(self.timeline, self.start_ms, self.end_ms):
            jobs += _replica_jobs(self.timeline.day(date).truth[pm.id].jobs, live.replica)
        inside = [j for j in jobs if self.start_ms <= j.start_ms and j.end_ms <= self.end_ms]
        energy = self.timeline.energy_wh
        return MachineReport(
            machine=live.machine.id,
            source=live.source,
            explicit=pm.jobs == "explicit",
            readings=readings,
            buffered=buffered,
            backlog=backlog,
            boots=boots,
            energy_wh=energy(pm.id, self.start_ms, self.end_ms),
            unmeasured_wh=sum(energy(pm.id, a, b) for a, b in unpowered),
            jobs=tuple(inside),
            job_wh=tuple(energy(pm.id, j.start_ms, j.end_ms) for j in inside),
        )


def _goodbye(m: _Live) -> None:
    """The firmware's goodbye(): counters to flash, offline status, clean disconnect."""
    fw = m.sensor.fw
    assert fw is not None
    fw.persist(True)
    m.session.goodbye(m.feed.topic_status, encode.status_offline(fw.state.boot))


def _replica_jobs(jobs: Sequence[ExplicitJob], replica: int) -> list[ExplicitJob]:
    """A replica's jobs: the plan machine's, with ids of its own (job ids are shop-wide)."""
    if replica == 1:
        return list(jobs)
    return [replace(j, job_id=f"{j.job_id}.{replica}") for j in jobs]


def _dates(timeline: ShopTimeline, start_ms: int, end_ms: int) -> list[dt.date]:
    first, last = timeline.local_date(start_ms), timeline.local_date(end_ms)
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
