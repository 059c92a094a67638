"""What `shopwatt run` costs a Raspberry Pi: memory, CPU, SD-card writes, install size.

    .venv/bin/python bench/footprint.py [--sensors 50] [--seconds 60] [--warmup 45]
                                        [--rss-sensors 500] [--rss-windows 60]

A live stream (every sensor one reading a second, noisy power like a real machine) goes
through mosquitto to `shopwatt run` (ledger + outbox -> InfluxDB 1.6.7) and, in the same
run, to a bare paho MQTT 5 QoS 1 subscriber in its own process (the floor). After a
warm-up past the service's start (its first full recompute of each machine's day, at
LIVE_EVERY_S, and the first read of the month's demand), both processes are read from
/proc over the window: CPU (utime + stime), bytes that reached storage (/proc/PID/io
write_bytes: what wears an SD card) and RSS (the median and the highest of one reading
a second).

Twice: early in a UTC day (an empty ledger) and late in it (20 h of one-second readings
per machine already in the ledger, stored through the ledger's replay path), so a cost
that grows with the day shows. Then the peak RSS with --rss-sensors sensors returning to
a backlog (bench/ingest.py's worst case) and the install size without extras.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.localservers import LOOPBACK, Influxd, ServerPool
from agent.serviceshop import (
    BROKER_CONFIG,
    FakeSensor,
    Gateway,
    Publisher,
    config,
    unit_env,
    write_config,
)
from bench.ingest import WAIT_S, peak_rss_mb
from gateway.config import Mqtt
from gateway.engine.model import MachineReadings
from gateway.inputs.mqtt import RECEIVE_MAXIMUM, SESSION_NEVER_EXPIRES
from gateway.ledger.chunks import ReadingStore
from gateway.ledger.schema import connect, transaction
from gateway.service import LIVE_EVERY_S

ROOT = Path(__file__).resolve().parent.parent
BYTES_GOAL = 500.0  # written per reading, at any hour
CPU_GOAL = 3.0  # x the bare subscriber's CPU share
RSS_GOAL_MB = 60.0  # steady, 50 sensors at 1 Hz
PEAK_GOAL_MB = 100.0  # 500 sensors returning to a backlog
DAY = datetime(2026, 11, 3, tzinfo=UTC)  # a past day: every reading is plausible
TOPIC = "shopwatt/v1/+/+/+/reading"
PRELOAD_H = 20
BATCH_S = Mqtt.model_fields["batch_s"].default
BARE_ENV = dict(os.environ)  # the floor's: main() gives the gateway the unit's settings


@dataclass(frozen=True)
class Usage:
    """One process over the measured window."""

    cpu_s: float
    written: int  # bytes that reached storage
    rss_mb: float  # median of one sample a second over the window
    rss_max_mb: float


def _proc(pid: int) -> tuple[float, int, float]:
    """CPU seconds so far, bytes written so far, RSS now."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(stat[11]) + int(stat[12])  # utime, stime: fields 14 and 15 of the line
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return ticks / 100.0, int(io["write_bytes"]), rss_kb / 1024


def _noisy(sensors: list[FakeSensor], seconds: int, seed: int) -> list[tuple[str, bytes]]:
    """`seconds` rounds of one reading per sensor, power jumping like a real machine's."""
    rng = np.random.default_rng(seed)
    watts = 9 * rng.integers(5, 400, size=(seconds, len(sensors)))  # 45 .. 3591 W
    return [
        (s.topic, s.reading(int(w))) for row in watts for s, w in zip(sensors, row, strict=True)
    ]


def _preload(path: Path, machines: list[str], start_ms: int) -> None:
    """PRELOAD_H hours of noisy one-second readings per machine, stored as replay does."""
    rng = np.random.default_rng(0)
    t = start_ms + np.arange(PRELOAD_H * 3600, dtype=np.int64) * 1000
    with closing(connect(path, create=True)) as conn, transaction(conn):
        store = ReadingStore(conn)
        for machine in machines:
            watts = np.round(rng.uniform(45.0, 3600.0, len(t)), 1)
            store.merge(machine, MachineReadings(t, watts, np.cumsum(watts) / 3600))
            store.forget()


def _subscriber(port: int) -> None:
    """The floor: a bare paho MQTT 5 QoS 1 subscriber with the gateway's session settings."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor", protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, _m: None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect(LOOPBACK, port, clean_start=False, properties=props)
    client.subscribe(TOPIC, qos=1)
    print("subscribed", flush=True)
    client.loop_forever()


def live(
    pool: ServerPool, influxd: Influxd, sensors: int, late: bool, seconds: int, warmup: int
) -> tuple[Usage, Usage, int]:
    """The gateway and the floor over `seconds` of a live stream: usage and readings."""
    broker = pool.mosquitto(BROKER_CONFIG)
    db = f"bench_footprint_{int(late)}"
    influxd.create_database(db)
    folder = Path(tempfile.mkdtemp(prefix=f"shopwatt-{db}-"))
    machines = {f"m{k:03d}": f"s{k:03d}" for k in range(sensors)}
    # shopwatt's default batch_s: what a Pi runs.
    path = write_config(folder, broker, influxd, db, machines, batch_s=BATCH_S)
    cfg = config(path)
    fakes = [FakeSensor(f"m{k:03d}", f"s{k:03d}") for k in range(sensors)]
    start_ms = int(DAY.timestamp() * 1000)
    for f in fakes:
        f.t_ms = start_ms + (PRELOAD_H * 3_600_000 if late else 0)
    if late:
        _preload(cfg.storage_dir / "ledger.sqlite", [f.machine for f in fakes], start_ms)
    msgs = _noisy(fakes, warmup + seconds, seed=int(late))
    floor = subprocess.Popen(
        [sys.executable, __file__, "--subscriber", str(broker.port)],
        stdout=subprocess.PIPE,
        env=BARE_ENV,
    )
    gw = Gateway(path)
    try:
        assert floor.stdout is not None
        floor.stdout.readline()  # subscribed
        with gw:
            assert gw.proc is not None
            publisher = Publisher(broker)
            sending = threading.Thread(target=publisher.send, args=(msgs, float(sensors)))
            sending.start()
            time.sleep(warmup)
            before = {p: _proc(p) for p in (gw.proc.pid, floor.pid)}
            rss = {p: [_proc(p)[2]] for p in before}
            # One RSS reading a second: a single reading at the end may catch a transient.
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(1.0, left))
                for p, samples in rss.items():
                    samples.append(_proc(p)[2])
            after = {p: _proc(p) for p in (gw.proc.pid, floor.pid)}
            sending.join(WAIT_S)
            publisher.close()
            gw.stop()
    finally:
        gw.__exit__()
        floor.kill()
        floor.wait()
    used = {
        p: Usage(
            after[p][0] - before[p][0],
            after[p][1] - before[p][1],
            float(np.median(rss[p])),
            max(rss[p]),
        )
        for p in before
    }
    pids = list(before)
    return used[pids[0]], used[pids[1]], sensors * seconds


def install_mb() -> tuple[float, int]:
    """Installed size of shopwatt's dependencies without extras (as in this venv): MB, count."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--quiet", "--report", str(report), str(ROOT)],
            check=True, capture_output=True, env=BARE_ENV,
        )  # fmt: skip
        names = [d["metadata"]["name"] for d in json.loads(report.read_text())["install"]]
    total = 0
    for name in names:
        if name == "shopwatt":
            continue
        dist = metadata.distribution(name)
        total += sum(f.size or 0 for f in dist.files or [] if f.hash is not None)
    return total / 1e6, len(names) - 1


# Every package the service loads, whole: some of their modules it imports only later, and
# compiling one at run time leaves the compiler's memory behind (7 MB more RSS early).
_COMPILE = """
import compileall, sys, gateway.cli, gateway.service
for name, module in list(sys.modules.items()):
    if "." not in name and hasattr(module, "__path__"):
        compileall.compile_dir(module.__path__[0], quiet=1)
"""


def _as_the_unit_runs() -> None:
    """The environment of examples/shopwatt.service for every process started from here on,
    with its modules compiled once beforehand, as at every start on a Pi but the first."""
    cache = Path(tempfile.gettempdir()) / "shopwatt-bench-cache"
    os.environ.update(unit_env(cache))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # systemd sets no such thing
    subprocess.run([sys.executable, "-c", _COMPILE], check=True)


def main() -> None:
    """Measure and print every figure beside its goal."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sensors", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60, help="measured window per scenario")
    ap.add_argument("--warmup", type=int, default=int(LIVE_EVERY_S) + 15, help="seconds")
    ap.add_argument("--rss-sensors", type=int, default=500)
    ap.add_argument("--rss-windows", type=int, default=60, help="backlog per sensor for RSS")
    ap.add_argument("--subscriber", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber:
        _subscriber(args.subscriber)
        return
    _as_the_unit_runs()
    pool = ServerPool()
    rows = []
    try:
        influxd = pool.influxd()
        for late in (False, True):
            gw, floor, n = live(pool, influxd, args.sensors, late, args.seconds, args.warmup)
            rows.append((late, gw, floor, n))
        peak = peak_rss_mb(pool, influxd, args.rss_sensors, args.rss_windows)
    finally:
        pool.close()
    size, deps = install_mb()
    rate = f"{args.sensors} sensors x 1 Hz, {args.seconds} s measured"
    print(f"live stream           : {rate}, noisy power, [mqtt] batch_s = {BATCH_S}")
    for late, gw, floor, n in rows:
        when = f"late in the day ({PRELOAD_H} h stored)" if late else "early in the day"
        print(f"-- {when}")
        share, floor_share = gw.cpu_s / args.seconds, floor.cpu_s / args.seconds
        ratio = share / max(floor_share, 1e-9)
        print(
            f"CPU                   : {share:6.1%} of a core; bare paho subscriber "
            f"{floor_share:.1%}; ratio {ratio:.1f} (goal <= {CPU_GOAL:.0f})"
        )
        print(
            f"written per reading   : {gw.written / n:8,.0f} bytes; bare paho subscriber "
            f"{floor.written / n:,.0f} (goal <= {BYTES_GOAL:.0f})"
        )
        print(
            f"steady RSS            : {gw.rss_mb:6.1f} MB median of one reading a second, "
            f"{gw.rss_max_mb:.1f} MB max (goal <= {RSS_GOAL_MB:.0f})"
        )
    backlog = f"{args.rss_sensors} sensors returning to a backlog of {args.rss_windows} windows"
    print(f"peak RSS              : {peak:6.1f} MB, {backlog} (goal <= {PEAK_GOAL_MB:.0f})")
    print(f"install, no extras    : {size:6.1f} MB in {deps} distributions besides shopwatt")


if __name__ == "__main__":
    main()
