"""A shop for testing and benchmarking the service: shop.toml, simulated sensors,
`shopwatt run` as a process (the tests under tests/service and bench/ use it).

Readings are built by the firmware's own encoder (firmware/encode.py), so the service is
tested with exactly the bytes a sensor sends. Powers are multiples of 9 W: with 10 s
windows a window's energy is then a whole number of mWh, and every expected energy in
these tests is exact.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.localservers import LOOPBACK, Influxd, Mosquitto, ServerError, spawn
from firmware import encode
from gateway.config import LEDGER_FILE, ShopConfig, load_config
from gateway.ledger.chunks import readings_per_machine
from gateway.service import CRASH_ENV

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "examples" / "shopwatt.service"
UNIT_CACHE = "/var/cache/shopwatt"  # the unit's CacheDirectory=
SITE = "test-shop"
T0 = int(datetime(2026, 11, 3, 8, 0, tzinfo=UTC).timestamp() * 1000)  # a Tuesday, 09:00 local
WINDOW_MS = 10_000
WAIT_S = 60.0  # how long a test waits for what it expects (a limit, never an assertion)
# Brokers in tests are configured as docs/deploy.md tells users to: no cap on the queue of
# a disconnected gateway (the default 1000 would drop readings during a long outage).
BROKER_CONFIG = "max_queued_messages 0\n"

T = TypeVar("T")


def unit_env(cache: Path) -> dict[str, str]:
    """The Environment= settings of examples/shopwatt.service, its cache folder moved to
    `cache`: the service runs as systemd runs it on a Pi."""
    lines = UNIT.read_text().splitlines()
    found = [line.removeprefix("Environment=") for line in lines if line.startswith("Environment=")]
    pairs = (item.partition("=") for item in found)
    return {key: value.replace(UNIT_CACHE, str(cache)) for key, _, value in pairs}


MACHINE = """
[[machine]]
id = "{id}"
off_below_w = 50
run_above_w = 500
min_job_s = 60
merge_gap_s = 120
max_gap_s = 120
rated_w = 5000
[machine.cost]
purchase = 10000.0
life_hours = 10000
maintenance_per_run_hour = 0.5
{source}
"""


def write_config(
    folder: Path,
    broker: Mosquitto | None,
    influxd: Influxd | None = None,
    db: str = "",
    sensors: dict[str, str] | None = None,
    meters: str = "",
    batch_s: float = 0.5,
) -> Path:
    """shop.toml with one machine per sensor (machine id -> sensor id) plus raw meter TOML."""
    text = f"""[site]
id = "{SITE}"
timezone = "Europe/Berlin"

[storage]
path = "data"

[tariff]
id = "t"
rate = 0.25
[[tariff.band]]
name = "peak"
rate = 0.40
start = "16:00"
end = "20:00"
"""
    for machine, sensor in (sensors or {}).items():
        text += MACHINE.format(id=machine, source=f'[[machine.sensor]]\nid = "{sensor}"\n')
    text += meters
    if broker is not None:
        text += f'\n[mqtt]\nhost = "{LOOPBACK}"\nport = {broker.port}\nbatch_s = {batch_s}\n'
    if influxd is not None:
        text += f'\n[influxdb]\nurl = "{influxd.url}"\ndatabase = "{db}"\nbackoff_max_s = 1\n'
    path = folder / "shop.toml"
    path.write_text(text)
    return path


@dataclass
class FakeSensor:
    """A sensor's protocol state: boot, seq, clock, uptime and an exact counter (mWh)."""

    machine: str
    sensor: str
    boot: int = 1
    seq: int = 0
    t_ms: int = T0
    up_ms: int = 60_000
    mwh: int = 0
    synced: bool = True
    truth_wh: float = 0.0  # energy of every window after the first one published
    published: int = 0

    @property
    def topic(self) -> str:
        """The reading topic."""
        return f"shopwatt/v1/{SITE}/{self.machine}/{self.sensor}/reading"

    def reading(self, watts: int) -> bytes:
        """The next window at `watts` (a multiple of 9) as the firmware encodes it."""
        assert watts % 9 == 0, "keep window energies whole mWh"
        window_mwh = watts * WINDOW_MS // 3600
        if self.published:
            self.truth_wh += window_mwh / 1000
        self.mwh += window_mwh
        self.t_ms += WINDOW_MS
        self.up_ms += WINDOW_MS
        payload = encode.reading(
            self.boot, self.seq, self.t_ms if self.synced else None, self.up_ms, WINDOW_MS,
            4800, None, [watts * 10 // 230], [watts * 10], [self.mwh], 0, 0, 0, -60, None,
        )  # fmt: skip
        self.seq += 1
        self.published += 1
        return payload

    def readings(self, watts: Iterable[int]) -> list[tuple[str, bytes]]:
        """Consecutive windows."""
        return [(self.topic, self.reading(w)) for w in watts]

    def power_cut(self, lag_mwh: int = 20_000) -> None:
        """The sensor restarts: new boot, seq 0, counter from flash (lag_mwh behind)."""
        self.boot += 1
        self.seq = 0
        self.up_ms = 5_000
        self.mwh -= lag_mwh


def job_event(machine: str, event: str, job: str, t_ms: int, **extra: Any) -> tuple[str, bytes]:
    """A job topic message."""
    body = {"v": 1, "event": event, "job": job, "t": t_ms, **extra}
    return f"shopwatt/v1/{SITE}/{machine}/job", json.dumps(body).encode()


class Publisher:
    """A paho QoS 1 publisher (a fast stand-in for many sensors)."""

    def __init__(self, broker: Mosquitto) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
        self._client.max_inflight_messages_set(1000)
        self._client.connect(LOOPBACK, broker.port)
        self._client.loop_start()

    def send(self, messages: Iterable[tuple[str, bytes]], per_s: float = 0.0) -> int:
        """Publish (at most per_s messages a second, if given) and wait until the broker
        acknowledged every message."""
        infos = []
        start = time.monotonic()
        for k, (topic, payload) in enumerate(messages):
            infos.append(self._client.publish(topic, payload, qos=1))
            if per_s and k % 10 == 9:
                time.sleep(max(0.0, start + (k + 1) / per_s - time.monotonic()))
        for info in infos:
            info.wait_for_publish(WAIT_S)
        return len(infos)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def mosquitto_pub(broker: Mosquitto, topic: str, payloads: list[bytes]) -> None:
    """Publish each payload as one QoS 1 message with the mosquitto_pub command."""
    subprocess.run(
        ["mosquitto_pub", "-h", LOOPBACK, "-p", str(broker.port), "-t", topic, "-q", "1", "-l"],
        input=b"\n".join(payloads) + b"\n",
        check=True,
        timeout=WAIT_S,
    )


@dataclass
class Gateway:
    """`shopwatt run` as its own process (so it can be SIGKILLed like on a Pi), stopped by PID
    and never outliving its starter (tests, benchmarks, `make stack-demo`)."""

    config: Path
    mqtt: bool = True  # ready() waits for the MQTT subscription, else for the start-up line
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    _ready_before: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.config.parent / "gateway.log"

    def start(self, crash_at: str = "") -> Gateway:
        """Start the service (crash_at: SHOPWATT_CRASH_AT, where it SIGKILLs itself)."""
        if self.proc is not None and self.proc.poll() is None:  # stop() would lose one
            raise RuntimeError(f"the gateway of {self.config} is already running")
        self._ready_before = self.log().count(self._ready_line)
        argv = [sys.executable, "-m", "gateway", "run", "--config", str(self.config)]
        with self.log_path.open("ab") as log:
            env = {**os.environ, "PYTHONUNBUFFERED": "1", CRASH_ENV: crash_at}
            self.proc = spawn(argv, log, ROOT, env)
        return self

    def ready(self) -> Gateway:
        """Wait until this start of the service has subscribed (before that, a broker drops
        what a new session has not subscribed to yet, and a signal may find no handler)."""
        deadline = time.monotonic() + WAIT_S
        while self.log().count(self._ready_line) <= self._ready_before:
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"the gateway did not start; {self.log_path}:\n{self.tail()}")
            time.sleep(0.1)
        return self

    @property
    def _ready_line(self) -> str:
        return "MQTT subscribed" if self.mqtt else "shopwatt run: site"

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        self._signal(signal.SIGKILL)

    def exited(self) -> int | None:
        """Wait until the service ends by itself (crash tests): its exit code (-9: it
        SIGKILLed itself); None if it did not end (it is killed then)."""
        proc = self.proc
        assert proc is not None
        try:
            code = proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.proc = None
        return code

    def stop(self) -> int | None:
        """SIGTERM and wait for the clean stop; returns the exit code (None: not running)."""
        return self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        try:
            return proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait()

    def log(self) -> str:
        """What the service logged."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 20) -> str:
        """Its last log lines."""
        return "\n".join(self.log().splitlines()[-lines:])

    def __enter__(self) -> Gateway:
        return self.start().ready()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def wait_for(what: str, probe: Callable[[], T | None], gateway: Gateway | None = None) -> T:
    """Poll until probe() returns something truthy; fail with the gateway's log if never."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.1)
    tail = gateway.log()[-3000:] if gateway else ""
    raise AssertionError(f"timed out waiting for {what}\n--- gateway log ---\n{tail}")


def ledger_readings(cfg: ShopConfig) -> dict[str, int]:
    """Readings stored per machine (the ledger's reading blocks: stored, maybe not costed yet)."""
    path = cfg.storage_dir / LEDGER_FILE
    if not path.exists():
        return {}
    with closing(sqlite3.connect(path, timeout=30.0)) as conn:
        try:
            return readings_per_machine(conn)
        except sqlite3.OperationalError:  # being created by the service right now
            return {}


def config(path: Path) -> ShopConfig:
    """The test's shop.toml, loaded."""
    return load_config(path)
