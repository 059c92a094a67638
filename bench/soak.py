"""Soak: a shop's real load for a few minutes, with faults on a schedule.

    .venv/bin/python bench/soak.py [--minutes 4] [--sensors 30] [--rate 1.0]

The whole chain as deployed: `shopwatt provision` makes the broker's config, users and
ACL and one set of credentials per sensor; each sensor is its own MQTT client (its own
user, a persistent session, QoS 1) publishing firmware-encoded readings at `--rate` per
second; mosquitto runs the provisioned config; `shopwatt run` (its own process) writes
the ledger and the outbox; influxd 1.6.7 receives the points.

Faults on a schedule (fractions of the run): gateway SIGKILL and restart 5 s later,
graceful broker restart, InfluxDB down for 30 s. Every 10 s it prints what was published,
what the ledger and InfluxDB hold, and the RSS of the gateway and the broker.

At the end the publishers stop and it waits until the ledger holds every reading and
InfluxDB every `power` point, then prints: loss (published - stored; goal 0, duplicates
would show as negative), the time each fault took to recover (the ledger back at what
was published when the fault ended), and the gateway's memory: its RSS at the end of the
run over its RSS once warm (goal <= 1.2), both measured in this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.localservers import (
    LOOPBACK,
    Influxd,
    ProvisionedBroker,
    ServerError,
    ServerPool,
    sensor_password,
)
from agent.serviceshop import FakeSensor, Gateway, ledger_readings, write_config
from gateway.config import ShopConfig, load_config
from gateway.provision.sensor import SensorOptions, provision_sensor

MEMORY_GOAL = 1.2  # RSS at the end / RSS once warm
SAMPLE_S = 10.0
WAIT_S = 300.0  # the end: how long the backlog may take to drain before it counts as loss
MQTT_SECTION = """
[mqtt]
host = "127.0.0.1"
port = 1883
username = "shopwatt-gateway"
secret_file = "mqtt.password"
batch_s = 1.0
"""


def rss_mb(pid: int | None) -> float:
    """Resident memory of a process (0 when it is not running)."""
    if pid is None:
        return 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kb / 1024


class Sensors:
    """One paho client per sensor with its own credentials, publishing on a thread."""

    def __init__(self, port: int, fakes: list[FakeSensor], passwords: list[str]) -> None:
        self.fakes = fakes
        self.published = 0
        self.acked = 0  # PUBACKs: the broker has it (also after a reconnect's resend)
        self._lock = threading.Lock()
        self._clients = []
        for fake, password in zip(fakes, passwords, strict=True):
            c = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"shopwatt-{fake.sensor}",
                clean_session=False,
            )
            c.username_pw_set(fake.sensor, password)
            # Like the firmware's offline buffer: while the broker is away, readings queue
            # in the client and go out in order when it reconnects.
            c.reconnect_delay_set(1, 2)
            c.on_publish = self._on_publish
            c.connect(LOOPBACK, port)
            c.loop_start()
            self._clients.append(c)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_publish(self, _c: paho.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self.acked += 1

    def start(self, rate: float) -> None:
        """Publish one reading per sensor every 1/rate s until stop()."""
        self._thread = threading.Thread(target=self._run, args=(1.0 / rate,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        tick = time.monotonic()
        k = 0
        while not self._stop.is_set():
            watts = 1800 if (k // 60) % 2 else 45  # one-minute jobs and pauses
            for fake, client in zip(self.fakes, self._clients, strict=True):
                client.publish(fake.topic, fake.reading(watts), qos=1)
                self.published += 1
            k += 1
            tick += period
            self._stop.wait(max(0.0, tick - time.monotonic()))

    def stop(self) -> None:
        """Stop publishing and wait until the broker acknowledged every reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + WAIT_S
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        """Disconnect them all."""
        for c in self._clients:
            c.disconnect()
            c.loop_stop()


@dataclass
class Fault:
    """One scheduled fault: what, when (fraction of the run), how long it lasts."""

    name: str
    at: float
    begin: Callable[[], object]
    end: Callable[[], object]
    hold_s: float = 0.0
    # What must catch up after it: readings in the ledger, or points in InfluxDB.
    caught_up: Callable[[], int] = lambda: 0
    started_s: float | None = None
    ended_s: float | None = None
    target: int = 0  # readings published when it ended: recovered once caught_up() has them
    recovered_s: float | None = None


@dataclass
class Run:
    """What the soak saw."""

    faults: list[Fault]
    samples: list[tuple[float, int, int, int, float, float, str]] = field(default_factory=list)
    # (t, MB) per gateway process: a SIGKILL starts a new list
    gateway_rss: list[list[tuple[float, float]]] = field(default_factory=lambda: [[]])


def soak(minutes: float, n_sensors: int, rate: float) -> None:
    """Set up, run the schedule, drain, report."""
    pool = ServerPool()
    folder = Path(tempfile.mkdtemp(prefix="shopwatt-soak-"))
    try:
        influxd = pool.influxd()
        db = influxd.create_database("soak")
        machines = {f"m{k:02d}": f"s{k:02d}" for k in range(n_sensors)}
        shop = write_config(folder, None, influxd, db, machines, batch_s=1.0)
        shop.write_text(shop.read_text() + MQTT_SECTION)
        broker = ProvisionedBroker(shop)
        cfg = load_config(shop)
        for machine, sensor in machines.items():
            opts = SensorOptions(machine, sensor, broker_host="127.0.0.1", wifi_ssid="soak")
            provision_sensor(cfg, opts, datetime.now(UTC))
        broker.start()
        shop.write_text(shop.read_text().replace("port = 1883", f"port = {broker.port}"))
        cfg = load_config(shop)
        fakes = [FakeSensor(m, s) for m, s in machines.items()]
        passwords = [sensor_password(broker, s) for s in machines.values()]
        gateway = Gateway(shop).start().ready()
        sensors = Sensors(broker.port, fakes, passwords)
        try:
            run = _schedule(minutes * 60, rate, cfg, influxd, db, broker, gateway, sensors)
            code = gateway.stop()
        finally:
            sensors.close()
            if gateway.proc is not None:
                gateway.kill()
        _report(run, sensors, cfg, influxd, db, code, n_sensors, rate, minutes)
    finally:
        pool.close()


def _schedule(
    duration_s: float,
    rate: float,
    cfg: ShopConfig,
    influxd: Influxd,
    db: str,
    broker: ProvisionedBroker,
    gateway: Gateway,
    sensors: Sensors,
) -> Run:
    def stored() -> int:
        return sum(ledger_readings(cfg).values())

    def restart_gateway() -> None:
        gateway.start()
        run.gateway_rss.append([])

    run = Run(
        [
            Fault("gateway SIGKILL, restart 5 s later", 0.15, gateway.kill, restart_gateway, 5,
                  stored),
            Fault("broker restart (SIGTERM, start)", 0.35, broker.stop, broker.start, 0, stored),
            Fault(
                "InfluxDB down for 30 s", 0.55, influxd.stop, influxd.start, 30,
                lambda: _points(influxd, db),
            ),
        ]
    )  # fmt: skip
    pending: list[Fault] = []
    sensors.start(rate)
    start = time.monotonic()
    next_sample = 0.0
    print(f"{'t s':>6} {'published':>10} {'ledger':>8} {'influxdb':>9} {'gw MB':>6} "
          f"{'broker MB':>9}  event")  # fmt: skip
    while (t := time.monotonic() - start) < duration_s:
        event = ""
        for f in run.faults:
            if f.started_s is None and t >= f.at * duration_s:
                f.begin()
                f.started_s, event = t, f"begin: {f.name}"
            elif f.started_s is not None and f.ended_s is None and t >= f.started_s + f.hold_s:
                f.end()
                f.ended_s, f.target, event = t, sensors.published, f"end: {f.name}"
                pending.append(f)
        _recovered(pending, t)
        gw_mb = rss_mb(gateway.proc.pid if gateway.proc else None)
        if gw_mb:
            run.gateway_rss[-1].append((t, gw_mb))
        if t >= next_sample or event:
            points = _points(influxd, db)
            row = (t, sensors.published, stored(), points, gw_mb, rss_mb(broker.pid), event)
            run.samples.append(row)
            print(
                f"{t:6.0f} {row[1]:10,} {row[2]:8,} {row[3]:9,} {gw_mb:6.1f} {row[5]:9.1f}  {event}"
            )
            next_sample = max(next_sample + SAMPLE_S, t) if not event else next_sample
        time.sleep(1.0)
    sensors.stop()
    total = sensors.published
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        _recovered(pending, time.monotonic() - start)
        if stored() >= total and _points(influxd, db) >= total:
            break
        time.sleep(1.0)
    return run


def _recovered(pending: list[Fault], t: float) -> None:
    """Mark the faults whose backlog has caught up (and forget them)."""
    for f in list(pending):
        if f.caught_up() >= f.target:
            f.recovered_s = t - (f.ended_s or t)
            pending.remove(f)


def _points(influxd: Influxd, db: str) -> int:
    """`power` points in InfluxDB; -1 while it is down."""
    try:
        rows = influxd.rows('SELECT count("watts") FROM "power"', db)
    except (OSError, ServerError):
        return -1
    return int(rows[0]["count"]) if rows else 0


def _report(
    run: Run,
    sensors: Sensors,
    cfg: ShopConfig,
    influxd: Influxd,
    db: str,
    code: int,
    n_sensors: int,
    rate: float,
    minutes: float,
) -> None:
    published = sensors.published
    per_machine = ledger_readings(cfg)
    stored = sum(per_machine.values())
    points = _points(influxd, db)
    uneven = {f.machine: per_machine.get(f.machine, 0) - f.published for f in sensors.fakes}
    uneven = {m: d for m, d in uneven.items() if d}
    print()
    print(f"load          : {n_sensors} sensors x {rate:g} reading/s for {minutes:g} min "
          f"through mosquitto (auth + ACL) into shopwatt run and influxd")  # fmt: skip
    print(f"readings      : {published:,} published, {stored:,} in the ledger, "
          f"{points:,} power points in InfluxDB")  # fmt: skip
    print(f"loss          : ledger {published - stored}, InfluxDB {published - points}, "
          f"per-sensor differences {uneven or 'none'} (goal: all 0)")  # fmt: skip
    for f in run.faults:
        took = "NOT RECOVERED" if f.recovered_s is None else f"recovered in {f.recovered_s:.1f} s"
        print(f"fault         : {f.name} at {f.started_s:.0f} s: {took}")
    print(f"clean stop    : exit code {code}")
    last = run.gateway_rss[-1]
    warm = [mb for t, mb in last if t >= last[0][0] + 0.25 * (last[-1][0] - last[0][0])]
    if warm:
        ratio = warm[-1] / warm[0]
        verdict = "steady" if ratio <= MEMORY_GOAL else "GROWING"
        print(f"gateway RSS   : {warm[0]:.1f} MB once warm -> {warm[-1]:.1f} MB at the end "
              f"(max {max(warm):.1f}); ratio {ratio:.2f} "
              f"(goal <= {MEMORY_GOAL}): {verdict}")  # fmt: skip
    for k, life in enumerate(run.gateway_rss[:-1]):
        if life:
            print(f"gateway RSS   : process {k + 1} (until its SIGKILL): "
                  f"{life[0][1]:.1f} -> {life[-1][1]:.1f} MB")  # fmt: skip
    broker_mb = [s[5] for s in run.samples if s[5]]
    if broker_mb:
        print(f"broker RSS    : {min(broker_mb):.1f} .. {max(broker_mb):.1f} MB")


def main() -> None:
    """Parse the options and run the soak."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--sensors", type=int, default=30)
    ap.add_argument("--rate", type=float, default=1.0, help="readings per sensor per second")
    args = ap.parse_args()
    soak(args.minutes, args.sensors, args.rate)


if __name__ == "__main__":
    main()
