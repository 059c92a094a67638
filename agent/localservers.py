"""Local mosquitto and influxd on free loopback ports, stopped by PID: for the demo and tests.

Every server binds 127.0.0.1 on a free port, lives in its own temporary folder, and is
stopped by PID. `stop()`/`kill()` end the process but keep its data so `start()` brings the
same server back on the same ports (fault tests); `close()` ends it for good and removes
the folder. Whatever is still running when the interpreter exits is killed by an atexit
hook, and on Linux each server also gets SIGKILL if the thread that started it dies
(`setpriv --pdeathsig`), so a crashed or SIGKILLed run leaves no orphans. `spawn()` gives
any other child (`shopwatt run` in tests, benchmarks and `make stack-demo`) the same.

`make stack-demo` (agent.stackdemo) runs its servers with these classes; the test
fixtures (tests/servers.py) and `bench/` use the same ones, through a `ServerPool`.
"""

from __future__ import annotations

import atexit
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Self

from gateway.config import load_config
from gateway.errors import ServerError
from gateway.provision.broker import BrokerOptions, Endpoint, provision_broker
from gateway.provision.state import Layout

__all__ = [
    "LOOPBACK",
    "Influxd",
    "Mosquitto",
    "ProvisionedBroker",
    "ServerError",
    "ServerPool",
    "ServerProcess",
    "find_binary",
    "free_port",
    "port_open",
    "sensor_password",
    "spawn",
]

LOOPBACK = "127.0.0.1"

# Debian package that provides each binary: the error message says what to install.
_PACKAGES = {"mosquitto": "mosquitto", "influxd": "influxdb", "socat": "socat"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def find_binary(name: str) -> str:
    """Absolute path of a server binary; mosquitto lives in /usr/sbin on Debian."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pkg = _PACKAGES.get(name, name)
        raise ServerError(
            f"{name} not found on PATH or in /usr/sbin: run `make system-deps` "
            f"(or `sudo apt-get install {pkg}`) first"
        )
    return path


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


# pid -> server: the atexit hook below ends whatever a test forgot (or could not) close.
_RUNNING: dict[int, ServerProcess] = {}
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # every process spawn() started
_SETPRIV = shutil.which("setpriv")


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_RUNNING.values()):
        server.close()
    for proc in list(_CHILDREN.values()):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def spawn(
    argv: list[str], log: BinaryIO, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child process that cannot outlive its starter, output to `log`.

    It gets SIGKILL when the thread that started it dies, whatever the cause (SIGKILL,
    Ctrl-C, an exception; `setpriv --pdeathsig`), and at interpreter exit if still running.
    """
    if _SETPRIV:
        argv = [_SETPRIV, "--pdeathsig", "KILL", *argv]  # setpriv execs: the pid stays
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    _CHILDREN[proc.pid] = proc
    return proc


class ServerProcess:
    """One server binary in its own temp folder, controlled by PID."""

    name = "server"
    startup_timeout_s = 30.0

    def __init__(self, root: Path | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shopwatt-{self.name}-", dir=root))
        self.log_path = self.workdir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._closed = False
        self._pick_ports()

    # -- what a subclass provides -------------------------------------------------------
    def _pick_ports(self) -> None:
        """Choose free ports and write the config (again after a port clash)."""
        raise NotImplementedError

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """PID of the running process, None when stopped."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start (or restart after stop/kill) and wait until it serves requests."""
        if self._closed:
            raise ServerError(f"{self.name}: already closed")
        if self.running:
            return self
        # A free port can be taken between choosing it and binding it (other tests run
        # in parallel): on a clash at the first start, pick new ports and try again.
        first_start = self._proc is None
        for attempt in range(3):
            self._spawn()
            if self._wait_ready():
                return self
            clash = "address already in use" in self.log_tail().lower()
            if not (first_start and clash and attempt < 2):
                break
            self._pick_ports()
        tail = self.log_tail()
        self.stop()
        raise ServerError(f"{self.name} did not become ready; log {self.log_path}:\n{tail}")

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._proc = spawn(self._argv(), log, self.workdir, self._env())
        _RUNNING[self._proc.pid] = self

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                _RUNNING.pop(self._proc.pid, None)
                return False
            if self._ready():
                return True
            time.sleep(0.02)
        return False

    def _signal(self, sig: signal.Signals, timeout_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        _RUNNING.pop(proc.pid, None)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Graceful stop (SIGTERM, SIGKILL after timeout_s); data stays for start()."""
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """Crash it (SIGKILL): no shutdown, no flush; data stays for start()."""
        self._signal(signal.SIGKILL, 15.0)

    def restart(self) -> Self:
        """Graceful stop, then start on the same ports with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop for good and delete the temp folder."""
        if self._closed:
            return
        self.kill()
        self._closed = True
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_since_start(self) -> str:
        """What the server printed since its latest start."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server printed (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class MosquittoProcess(ServerProcess):
    """mosquitto run with the config_path its subclass writes in _pick_ports."""

    config_path: Path

    def __init__(self, root: Path | None = None) -> None:
        self.binary = find_binary("mosquitto")
        super().__init__(root)

    def _listen_port(self) -> int:
        """The port that answers once the broker is up."""
        raise NotImplementedError

    def _argv(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _ready(self) -> bool:
        # Its own "running" line, not just an open port: after a port clash the port may
        # be open because of somebody else's server.
        return " running" in self.log_since_start() and port_open(self._listen_port())


class Mosquitto(MosquittoProcess):
    """A mosquitto broker: anonymous, persistent (survives restart), logging to its log."""

    name = "mosquitto"

    def __init__(self, root: Path | None = None, extra_config: str = "") -> None:
        self.extra_config = extra_config
        super().__init__(root)

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.config_path = self.workdir / "mosquitto.conf"
        # Run as root, mosquitto drops to the `mosquitto` user, which could neither write
        # the persistence file in our 0700 temp dir nor receive the parent-death signal
        # (dropping privileges clears it): keep it as whoever runs the tests.
        self.config_path.write_text(
            f"listener {self.port} {LOOPBACK}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "log_dest stderr\n"
            f"user {getpass.getuser()}\n"
            f"{self.extra_config}\n"
        )

    def _listen_port(self) -> int:
        return self.port

    @property
    def host(self) -> str:
        """Where clients connect."""
        return LOOPBACK


class Influxd(ServerProcess):
    """An InfluxDB 1.x server with every listener on a free loopback port."""

    name = "influxd"

    def __init__(self, root: Path | None = None) -> None:
        self.binary = find_binary("influxd")
        super().__init__(root)

    def _pick_ports(self) -> None:
        self.http_port = free_port()
        rpc_port, ifql_port = free_port(), free_port()
        d = self.workdir
        self.config_path = d / "influxd.conf"
        # Only what differs from influxd's defaults: loopback ports, private dirs, and the
        # logs/self-monitoring off (noise in tests; what an SD card wants too).
        self.config_path.write_text(
            f"""reporting-enabled = false
bind-address = "{LOOPBACK}:{rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "{LOOPBACK}:{self.http_port}"
  log-enabled = false
  pprof-enabled = false
[ifql]
  enabled = false
  bind-address = "{LOOPBACK}:{ifql_port}"
[continuous_queries]
  log-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def _argv(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _env(self) -> dict[str, str]:
        # INFLUXDB_* variables override the config file: never let the caller's leak in.
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return bool(resp.status == 204)
        except OSError:
            return False

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL via POST /query; returns the `results` list, errors raise."""
        params = {"q": q, "epoch": "ms"} | ({"db": db} if db else {})
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as err:
            raise ServerError(f"influxd /query {q!r}: {err.code} {err.read()!r}") from None
        results: list[dict[str, Any]] = body.get("results", [])
        errors = [r["error"] for r in results if "error" in r]
        if errors or "error" in body:
            raise ServerError(f"influxd /query {q!r}: {errors or body['error']}")
        return results

    def rows(self, q: str, db: str) -> list[dict[str, Any]]:
        """One SELECT's rows as dicts (column -> value, plus the series' tags)."""
        out: list[dict[str, Any]] = []
        for series in self.query(q, db)[0].get("series", []):
            tags = series.get("tags", {})
            out.extend(
                tags | dict(zip(series["columns"], v, strict=True)) for v in series["values"]
            )
        return out

    def create_database(self, name: str) -> str:
        """CREATE DATABASE (idempotent); returns the name."""
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """DROP DATABASE (idempotent)."""
        self.query(f'DROP DATABASE "{name}"')

    def write(self, lines: Iterable[str], db: str, precision: str = "ms") -> None:
        """POST line protocol to /write; anything but 204 raises."""
        body = "\n".join(lines).encode()
        url = f"{self.url}/write?" + urllib.parse.urlencode({"db": db, "precision": precision})
        try:
            with urllib.request.urlopen(url, data=body, timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            raise ServerError(f"influxd /write: {err.code} {err.read()!r}") from None
        if status != 204:
            raise ServerError(f"influxd /write answered {status}")


def _raise(message: str) -> NoReturn:
    raise ServerError(message)


class ServerPool:
    """Servers started together (by one test, one benchmark); `close()` ends them all.

    `on_error` receives the message when a binary is missing or a server fails to start
    (the pytest fixtures pass `pytest.fail`); by default it raises ServerError.
    """

    def __init__(self, on_error: Callable[[str], NoReturn] = _raise) -> None:
        self._on_error = on_error
        self.closers: list[Callable[[], None]] = []  # close() calls them, newest first

    def _started(self, server: ServerProcess) -> None:
        self.closers.append(server.close)
        try:
            server.start()
        except ServerError as err:
            self._on_error(str(err))

    def mosquitto(self, extra_config: str = "") -> Mosquitto:
        """A started broker of this pool's own; `extra_config` lines go into its config."""
        try:
            broker = Mosquitto(extra_config=extra_config)
        except ServerError as err:
            self._on_error(str(err))
        self._started(broker)
        return broker

    def influxd(self) -> Influxd:
        """A started influxd of this pool's own: stop, kill and restart it freely."""
        try:
            server = Influxd()
        except ServerError as err:
            self._on_error(str(err))
        self._started(server)
        return server

    def close(self) -> None:
        """Close everything, newest first."""
        while self.closers:
            self.closers.pop()()


class ProvisionedBroker(MosquittoProcess):
    """mosquitto running the config `shopwatt provision broker` wrote for `shop`."""

    name = "mosquitto-provisioned"

    def __init__(self, shop: Path, tls: bool = False, plain: bool = True) -> None:
        self.shop, self.tls, self.plain = shop, tls, plain
        super().__init__()

    def _pick_ports(self) -> None:
        self.port = free_port() if self.plain else 0
        self.tls_port = free_port() if self.tls else 0
        opts = BrokerOptions(
            listen=[Endpoint(LOOPBACK, self.port)] if self.plain else [],
            tls_listen=[Endpoint(LOOPBACK, self.tls_port)] if self.tls else [],
            tls_names=["127.0.0.1", "localhost"] if self.tls else [],
            # The tests' user: whoever runs them (root drops to it; pdeathsig keeps working).
            user=getpass.getuser(),
        )
        self.config_path = provision_broker(load_config(self.shop), opts, datetime.now(UTC)).conf

    @property
    def layout(self) -> Layout:
        """Where provisioning put this shop's files."""
        return Layout.of(load_config(self.shop))

    def _listen_port(self) -> int:
        return self.port or self.tls_port

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its password file and ACL."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGHUP)


def sensor_password(broker: ProvisionedBroker, sensor: str) -> str:
    """The password provisioning generated for `sensor` (from its config.json)."""
    doc = json.loads(broker.layout.sensor_config(sensor).read_text())
    password: str = doc["mqtt"]["password"]
    return password
