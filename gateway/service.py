"""`shopwatt run`: inputs -> per-machine batches -> ledger -> outbox -> InfluxDB, and health.

Every `[mqtt] batch_s` seconds (sooner when many messages wait) the service takes what the
inputs delivered and commits it as one batch:

1. MQTT readings go through the tracker (dedup, placement, gateway counter); Modbus
   readings are used as polled; job events update the job book;
2. the ledger stores the batch in one durable transaction, together with the tracker's,
   job book's and live views' state and the readings not shown live yet (ledger/live.py;
   docs/gateway.md: why this makes a restart exact),
   and recomputes the jobs and costs of the machines due (every LIVE_EVERY_S each);
3. before that transaction commits, the outbox takes, in one durable commit of its own,
   the batch's `power` lines, the due machines' `machine_state` and `energy` lines, the
   recomputed rows' `job`/`overhead` lines and the health points made since the last
   batch: a crash after this step re-sends them (the batch is not acknowledged), InfluxDB
   overwrites them; one commit, not three, as every commit wears an SD card;
4. the ledger commits;
5. only now are the MQTT messages acknowledged to the broker.

SIGTERM (or stop()) ends it cleanly: Modbus polling stops, the last batch is committed and
acknowledged, MQTT disconnects (the broker keeps what came later), the outbox drains for a
few seconds. After a SIGKILL the broker redelivers the unacknowledged messages and the
tracker's persisted state drops what had been committed: nothing lost, nothing doubled.
Readings committed whose live lines were not due yet are read back from the ledger (their
range commits with each batch), so the live picture misses none of them either.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from itertools import pairwise
from types import FrameType
from typing import TYPE_CHECKING

import numpy as np

from gateway.clock import now_ms
from gateway.config import ShopConfig
from gateway.counted import counted
from gateway.engine.live import LiveView
from gateway.engine.model import ExplicitJob, MachineReadings, Reading, first_of_times
from gateway.errors import ConfigError, InputError, LedgerError
from gateway.inputs.jobevents import JobBook
from gateway.inputs.mqtt import Inbox, MqttInput, sensor_specs
from gateway.inputs.protocol import StatusReport
from gateway.inputs.tracker import DUPLICATE, READING, Tracker
from gateway.ledger import Ledger
from gateway.ledger.bill import PeakWatch
from gateway.ledger.live import LiveState
from gateway.ledger.rows import LedgerRow
from gateway.outputs.drain import Drainer, open_influx_output
from gateway.outputs.lineprotocol import FieldValue
from gateway.outputs.outbox import Outbox
from gateway.outputs.publish import RowLines, machine_lines, member_points
from gateway.outputs.schema import (
    batch_power_lines,
    demand_lines,
    gateway_line,
    reading_lines,
    sensor_line,
    source_lines,
)

if TYPE_CHECKING:
    from gateway.inputs.modbus import ModbusInput

log = logging.getLogger("shopwatt.service")

HEALTH_EVERY_S = 10.0  # health points to InfluxDB
MEMBERS_EVERY_S = 300.0  # members' balances: they change with jobs, a few times an hour
# The month's demand re-reads every source's last half hour: a 15-minute average moves
# little in a minute, and a clean stop writes the last one.
DEMAND_EVERY_S = 60.0
LIVE_EVERY_S = 60.0  # a machine's state/energy lines and its jobs and costs follow this often
LOG_EVERY_S = 300.0  # a one-line summary in the log
DRAIN_AT_STOP_S = 5.0  # how long a clean stop lets the outbox drain
SWITCH_INTERVAL_S = 0.0005  # see tune_process
SQLITE_HEAP_BYTES = 1_000_000  # see tune_process
SOURCE = "live"  # the ledger's audit name for what the service stores
CRASH_ENV = "SHOPWATT_CRASH_AT"  # tests of crash safety only: see CrashPoint


def _per_machine(readings: list[Reading]) -> tuple[dict[str, MachineReadings], dict[str, str]]:
    """Usable readings per machine, sorted by time, the first of equal times kept; and each
    machine's source (v1: one sensor or meter per machine)."""
    if not readings:
        return {}, {}
    sources = {r.machine: r.sensor for r in reversed(readings)}  # each machine's first
    index = {machine: k for k, machine in enumerate(sources)}
    n = len(readings)
    group = np.fromiter((index[r.machine] for r in readings), np.int64, n)
    t = np.fromiter((r.t_ms for r in readings), np.int64, n)
    # One sort for the batch, not one per machine: by machine, then time, as one key (a
    # batch spans minutes, at most the plausible years: far from int64's end).
    lo, span = int(t.min()), int(t.max() - t.min()) + 1
    kept = first_of_times(
        group * span + (t - lo),
        np.fromiter((r.watts for r in readings), np.float64, n),
        np.fromiter((r.wh for r in readings), np.float64, n),
    ).readings
    machine_of = kept.t_ms // span
    bounds = [0, *(np.flatnonzero(np.diff(machine_of)) + 1).tolist(), len(kept)]
    names = list(sources)
    return {
        names[int(machine_of[a])]: MachineReadings(
            kept.t_ms[a:b] % span + lo, kept.watts[a:b], kept.wh[a:b]
        )
        for a, b in pairwise(bounds)
    }, sources


def _concat(parts: list[MachineReadings]) -> MachineReadings:
    """Batches of one machine as one series, sorted, the first of equal times kept."""
    if len(parts) == 1:
        return parts[0]
    return first_of_times(
        np.concatenate([p.t_ms for p in parts]),
        np.concatenate([p.watts for p in parts]),
        np.concatenate([p.wh for p in parts]),
    ).readings


class CrashPoint:
    """SIGKILL the service once `n` readings have passed a named point of a batch.

    For tests of crash safety only (docs/gateway.md): SHOPWATT_CRASH_AT=<point>:<n>, the
    points being "taken" (nothing written yet), "queued" (points in the outbox, ledger not
    committed), "committed" (ledger committed, broker not acknowledged) and "acked".
    """

    def __init__(self, spec: str) -> None:
        point, _, n = spec.partition(":")
        self._point, self._left = point, int(n or 0)

    def passed(self, point: str, readings: int) -> None:
        """Die here if this is the point and enough readings have passed it."""
        if point == self._point and readings:
            self._left -= readings
            if self._left <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


class Health:
    """What the gateway knows about its sensors, beyond the counters of its parts."""

    def __init__(self) -> None:
        self.last_seen_ms: dict[str, int] = {}
        self.status: dict[str, tuple[int, StatusReport]] = {}  # sensor -> (received, status)
        self.counts: Counter[str] = Counter()  # batches, jobs_failed, ...

    def take(self, box: Inbox) -> None:
        """Note when each sensor was heard of and its latest status."""
        self.last_seen_ms.update(box.seen_ms)
        for sensor, status in box.statuses:
            self.status[sensor] = (box.seen_ms.get(sensor, now_ms()), status)

    def sensor_fields(self, sensor: str, counts: Mapping[str, int]) -> dict[str, FieldValue]:
        """The `sensor` point: last seen, status, the tracker's counters."""
        fields: dict[str, FieldValue] = dict(counts)
        if sensor in self.last_seen_ms:
            fields["last_seen_ms"] = self.last_seen_ms[sensor]
        if sensor in self.status:
            at, s = self.status[sensor]
            fields |= {"online": s.state == "online", "boot": s.boot, "status_ms": at}
            optional = {"fw": s.fw, "rssi": s.rssi, "buffered": s.buf}
            fields |= {k: v for k, v in optional.items() if v is not None}
        return fields


class Service:
    """The gateway service of one shop.toml; run() until stop()."""

    def __init__(self, cfg: ShopConfig) -> None:
        meters = sum(len(m.meter) for m in cfg.metered.values())
        if cfg.mqtt is None and not meters:
            raise ConfigError(
                f"{cfg.source}: nothing to run: add an [mqtt] section (sensors, job events) "
                "or a Modbus meter ([[machine.meter]], [[site_meter.meter]])"
            )
        sensors = sensor_specs(cfg)
        if sensors and cfg.mqtt is None:
            raise ConfigError(f"{cfg.source}: sensors {', '.join(sensors)} need an [mqtt] section")
        self.cfg = cfg
        self.ledger = Ledger(cfg, who="shopwatt run")
        self.batch_ready = threading.Event()
        self.mqtt = MqttInput(cfg, self.batch_ready) if cfg.mqtt else None
        self.modbus: ModbusInput | None = None
        if meters:
            # pymodbus (~5 MB of a Pi's memory) loads only for a shop with Modbus meters.
            from gateway.inputs.modbus import ModbusInput

            self.modbus = ModbusInput.from_config(cfg)
        self.outbox: Outbox | None = None
        self.drainer: Drainer | None = None
        if cfg.influxdb is not None:
            self.outbox, self.drainer = open_influx_output(cfg)
        self.tracker = Tracker(sensors)
        self.jobs = JobBook(cfg.site.tz)
        self.views: dict[str, LiveView] = {}
        self.rows = RowLines(cfg.site.id, cfg.tariff)
        self.peak = PeakWatch(cfg)
        # A site meter's readings are stored and shown as `site_power`, never costed.
        self._roles = {m.id: m.role for m in cfg.site_meter}
        self._grid_newest = 0  # the grid meter's newest stored reading (ms; 0: none yet)
        self.health = Health()
        self._crash = CrashPoint(os.environ.get(CRASH_ENV, ""))
        self.batch_s = cfg.mqtt.batch_s if cfg.mqtt else 2.0
        self._polled: list[Reading] = []
        self._polled_lock = threading.Lock()
        self._stopping = threading.Event()
        self._unsent: list[str] = []  # lines for the outbox's next commit (see _send)
        self._dirty_views: set[str] = set()
        self._live: dict[str, list[MachineReadings]] = {}  # readings awaiting live lines
        self._pending: dict[str, tuple[int, int]] = {}  # stored, rows not recomputed yet
        self._due_at: dict[str, float] = {}  # when each machine's live lines and rows are due
        self._members_due = 0.0  # when the members' balances are written next (monotonic)
        self._demand_due = 0.0  # when the demand point is made next (monotonic)
        self._demand_at: int | None = None  # the newest reading the last demand point saw

    # -- start and stop -----------------------------------------------------------------
    def start(self) -> None:
        """Bring the ledger up to shop.toml, restore state, start writer and inputs."""
        if self.ledger.path.exists() and not all(
            m.config_current for m in self.ledger.status(0).machines
        ):
            recomputed = self.ledger.recompute()
            for machine, (first, last) in recomputed.items():
                log.warning("shop.toml changed: recomputed %s %s .. %s", machine, first, last)
        self._load_state()
        if self.drainer is not None:
            self.drainer.start()
        if self.modbus is not None:
            self.modbus.start(self._poll_sink)
        if self.mqtt is not None:
            self.mqtt.start()
        log.info(
            "shopwatt run: site %s, %s, %s, %s, InfluxDB %s",
            self.cfg.site.id,
            counted(len(self.cfg.machine), "machine"),
            counted(len(self.tracker.sensors), "sensor"),
            counted(sum(len(m.meter) for m in self.cfg.metered.values()), "meter"),
            self.cfg.influxdb.url if self.cfg.influxdb else "off",
        )

    def stop(self) -> None:
        """Ask run() to finish (signal-safe: only sets flags)."""
        self._stopping.set()
        self.batch_ready.set()

    def run(self) -> None:
        """Commit batches until stop(), then shut down cleanly."""
        next_health = next_log = time.monotonic()
        try:
            while not self._stopping.is_set():
                self.batch_ready.wait(self.batch_s)
                now = time.monotonic()
                if now >= next_health:  # its points go into the outbox with the batch
                    self.write_health()
                    next_health = now + HEALTH_EVERY_S
                self.flush()
                if now >= next_log:
                    self.log_summary()
                    next_log = now + LOG_EVERY_S
        except BaseException:
            # Whatever failed (the disk, a bug): nothing more is acknowledged, so the broker
            # keeps every message the failed batch held; systemd restarts the service.
            self._shutdown(final_batch=False)
            raise
        self._shutdown(final_batch=True)

    def _shutdown(self, final_batch: bool) -> None:
        if self.modbus is not None:
            self.modbus.stop()
        if final_batch:
            self.flush(final=True)  # the last readings, acknowledged before we disconnect
            self.write_health(final=True)
            self._send()
            self.log_summary()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.drainer is not None and self.outbox is not None:
            deadline = time.monotonic() + DRAIN_AT_STOP_S
            while self.outbox.depth and time.monotonic() < deadline:
                time.sleep(0.05)
            self.drainer.stop()
            self.outbox.close()
        self.ledger.disconnect()
        log.info("shopwatt run: stopped")

    def _poll_sink(self, reading: Reading) -> None:
        with self._polled_lock:
            self._polled.append(reading)

    # -- one batch ----------------------------------------------------------------------
    def flush(self, final: bool = False) -> None:
        """Commit what the inputs delivered since the last flush (see the module docstring).

        final: recompute every machine with pending readings now (a clean stop).
        """
        box = self.mqtt.take() if self.mqtt else Inbox()
        with self._polled_lock:
            polled, self._polled = self._polled, []
        self.health.take(box)
        placed = self.tracker.process(box.readings)
        for machine, event in box.jobs:
            self.jobs.apply(machine, event)
        usable = placed + [r for r in polled if r.watts is not None and r.wh is not None]
        batches, sources = _per_machine(usable)
        lines = batch_power_lines(self.cfg.site.id, batches, sources, self._roles)
        # A meter reading that lacks a value is not stored, but what it has is shown.
        lines += reading_lines(
            self.cfg.site.id, [r for r in polled if r.watts is None or r.wh is None], self._roles
        )
        machines = {m: r for m, r in batches.items() if m not in self._roles}
        due = self._due(machines, {machine for machine, _ in box.jobs}, final)
        lines += self._live_lines(due)
        n = sum(len(r) for r in batches.values())
        self._crash.passed("taken", n)
        self._put(lines)
        newest = {m: v.last[0] for m, v in self.views.items() if v.last is not None}
        jobs = self.jobs.take(newest, due)
        recompute = {m: self._pending.pop(m) for m in due if m in self._pending}
        if batches or jobs or recompute or self.tracker.dirty or self._dirty_views or len(box):
            self._ingest(batches, jobs, recompute, lambda rows: self._send(rows, n))
            self._crash.passed("committed", n)
            grid = self.cfg.grid_meter
            if grid is not None and grid.id in batches:
                self._grid_newest = max(self._grid_newest, int(batches[grid.id].t_ms[-1]))
        else:
            self._send()
        if self.mqtt is not None:
            self.mqtt.ack(box)
        self._crash.passed("acked", n)
        self.health.counts["batches"] += 1

    def _due(
        self, batches: Mapping[str, MachineReadings], job_events: set[str], final: bool
    ) -> set[str]:
        """Note the batch as pending; the machines whose live lines and rows are due now.

        Each machine's rows (jobs, costs) and its `machine_state`/`energy` lines follow
        every LIVE_EVERY_S, not every batch: recomputing a machine's day costs the same for
        one reading as for a hundred, and a Pi has other things to do. A job event makes
        its machine due at once (someone just pressed a button and looks at the screen).
        """
        now = time.monotonic()
        for machine in job_events:
            self._due_at[machine] = now
        for machine, r in batches.items():
            self._live.setdefault(machine, []).append(r)
            lo, hi = int(r.t_ms[0]), int(r.t_ms[-1])
            a, b = self._pending.get(machine, (lo, hi))
            self._pending[machine] = (min(a, lo), max(b, hi))
            self._due_at.setdefault(machine, now + LIVE_EVERY_S)
        due = {m for m, at in self._due_at.items() if final or at <= now}
        for machine in due:
            del self._due_at[machine]
        return due

    def _live_lines(self, due: set[str]) -> list[str]:
        shown = {m: _concat(parts) for m in sorted(due) if (parts := self._live.pop(m, []))}
        if not shown:
            return []
        # The price slots of every due machine's readings, read once for all of them.
        views = {m: self.views.get(m, LiveView()) for m in shown}
        starts = [int(r.t_ms[0]) for r in shown.values()]
        starts += [v.last[0] for v in views.values() if v.last is not None]
        slots = self.ledger.price_slots(min(starts), max(int(r.t_ms[-1]) for r in shown.values()))
        lines: list[str] = []
        for machine, r in shown.items():
            made, self.views[machine] = machine_lines(
                self.cfg, self.cfg.machines[machine], r, views[machine], lambda _a, _b: slots
            )
            lines += made
            self._dirty_views.add(machine)
        return lines

    def _ingest(
        self,
        batches: dict[str, MachineReadings],
        jobs: dict[str, list[list[ExplicitJob]]],
        recompute: dict[str, tuple[int, int]],
        before_commit: Callable[[list[LedgerRow]], None],
    ) -> None:
        state = self._changed_state()
        try:
            self.ledger.ingest(batches, SOURCE, jobs, state, recompute, before_commit)
        except (InputError, LedgerError) as err:
            if not jobs:
                raise
            # A job the ledger refuses (e.g. its id is taken by a jobs.csv job on another
            # day) must not hold the readings back: store them without the jobs.
            log.error("ledger refused live jobs of %s: %s", ", ".join(jobs), err)
            self.health.counts["jobs_refused"] += sum(len(g) for gs in jobs.values() for g in gs)
            self.ledger.ingest(batches, SOURCE, None, state, recompute, before_commit)

    def _put(self, lines: list[str]) -> None:
        """Queue lines for the outbox's next commit (the batch's)."""
        if self.outbox is not None:
            self._unsent += lines

    def _send(self, rows: Sequence[LedgerRow] = (), readings: int = 0) -> None:
        """Put the queued lines and the changed rows' lines into the outbox, one commit."""
        self._put(self.rows.changed(rows))
        if self.outbox is not None and self._unsent:
            self.outbox.put(self._unsent)
        self._unsent = []
        self._crash.passed("queued", readings)

    # -- state in the ledger ----------------------------------------------------------
    def _changed_state(self) -> LiveState:
        """What changed since the last batch; the ledger commits it with this batch."""
        views = {m: self.views[m] for m in self._dirty_views}
        self._dirty_views.clear()
        # Stored readings whose rows and live points are not made yet: a restart makes them.
        return LiveState(self.tracker.dump(), self.jobs.dump(), views, dict(self._pending))

    def _load_state(self) -> None:
        state = self.ledger.live_state()
        self.tracker.load(state.sensors)
        self.jobs.load(state.jobs)
        self.views = {m: v for m, v in state.views.items() if m in self.cfg.machines}
        for machine, (a, b) in state.pending.items():
            if machine in self.cfg.machines:
                self._pending[machine] = (a, b)
                # Committed before a crash, but their `machine_state`/`energy` points were
                # not made yet: the ledger has them, the view knows where the points ended.
                self._live[machine] = [self.ledger.readings(machine, a, b)]
                self._due_at[machine] = 0.0  # due at the first batch

    # -- health -------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """The `gateway` measurement's reading counters (since start)."""
        per_sensor = self.tracker.counts.values()
        mqtt = self.mqtt.counts if self.mqtt else Counter()
        polled = sum(
            s.get("readings", 0) for s in (self.modbus.stats() if self.modbus else {}).values()
        )
        return {
            "readings_in": sum(c[READING] for c in per_sensor) + polled,
            "readings_rejected": mqtt["rejected"],
            "readings_deduplicated": sum(c[DUPLICATE] for c in per_sensor),
            "job_events": self.jobs.counts["jobs"],
            "jobs_refused": self.health.counts["jobs_refused"],
            "batches": self.health.counts["batches"],
        }

    def write_health(self, final: bool = False) -> None:
        """`gateway`, `sensor` and `source` points into the outbox; the `demand` point when
        due (or final: at a clean stop)."""
        if self.outbox is None or self.drainer is None:
            return
        site, now = self.cfg.site.id, now_ms()
        fields: dict[str, FieldValue] = dict(self.counters())
        fields |= self.outbox.health().fields() | self.drainer.stats.fields()
        lines = [gateway_line(site, now, fields)]
        for sensor, spec in self.tracker.sensors.items():
            counts = self.tracker.counts[sensor]
            lines.append(
                sensor_line(
                    site, spec.machine, sensor, now, self.health.sensor_fields(sensor, counts)
                )
            )
        stats = dict(self.modbus.stats()) if self.modbus else {}
        if self.mqtt:
            stats |= self.mqtt.stats()
        stats["jobs"] = dict(self.jobs.counts)
        self._put([text for text in lines if text] + source_lines(site, now, stats))
        if final or time.monotonic() >= self._demand_due:
            demand = self._demand_lines()
            if demand:  # nothing new: asked again at the next health tick
                self._demand_due = time.monotonic() + DEMAND_EVERY_S
            self._put(demand)
        if time.monotonic() >= self._members_due and self.ledger.path.exists():
            self._members_due = time.monotonic() + MEMBERS_EVERY_S
            self._put(member_points(self.cfg, now))

    def _demand_lines(self) -> list[str]:
        """The month's demand at the newest reading shown live or of the grid meter (its
        time, not the clock's: readings from a meter with a wrong clock stay in their own
        month); nothing when no reading was shown since the last point (the demand is what
        it was)."""
        shown = [v.last[0] for v in self.views.values() if v.last is not None]
        shown += [self._grid_newest] if self._grid_newest else []
        if not shown or self.cfg.influxdb is None or max(shown) == self._demand_at:
            return []
        self._demand_at = max(shown)
        demand = self.ledger.demand(self.peak, max(shown))
        return demand_lines(self.cfg.site.id, demand, self.cfg.influxdb.demand_warning)

    def log_summary(self) -> None:
        """One line with the counters that matter."""
        c = self.counters()
        depth = self.outbox.depth if self.outbox else 0
        log.info(
            "readings in %d, rejected %d, duplicates %d, job events %d; outbox %s",
            c["readings_in"],
            c["readings_rejected"],
            c["readings_deduplicated"],
            c["job_events"],
            counted(depth, "line"),
        )


def tune_process() -> None:
    """Process-wide settings for the service: thread switches and SQLite's memory."""
    # Three threads (MQTT network, batches, InfluxDB writer) hand the interpreter lock to
    # each other at every socket and SQLite call; with the default 5 ms switch interval the
    # network thread waits behind a batch, and the broker's queue drains at half speed.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # SQLite gives each connection a 2 MB page cache: the ledger's, the outbox's and every
    # short reader's (live demand, prices) fill theirs late in the day, and what a reader
    # frees stays in the heap. The ledger reads each block once per operation and the OS
    # caches the file anyway: one soft limit for all of them (docs/deploy.md).
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(f"PRAGMA soft_heap_limit = {SQLITE_HEAP_BYTES}")


def run_service(cfg: ShopConfig) -> None:
    """Run until SIGTERM or SIGINT (the CLI's `shopwatt run`)."""
    service = Service(cfg)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shopwatt run: %s, stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tune_process()
    service.start()
    service.run()
