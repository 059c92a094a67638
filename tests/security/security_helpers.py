"""A shop provisioned by `shopwatt provision`, its real broker, and MQTT clients for tests.

`ProvisionedBroker` (agent.localservers) runs mosquitto with exactly the config `provision
broker` generated (free loopback ports, chosen again after a port clash) and is stopped by
PID like every server in tests/servers.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import LOOPBACK

VECTOR = Path(__file__).resolve().parents[2] / "tests/vectors/reading/valid/three_channels.json"
WAIT_S = 20.0  # an upper bound for something to happen, never a timing assertion
SITE = "northside"
GATEWAY_USER = "shopwatt-gateway"

SHOP_TOML = """\
[site]
id = "northside"
timezone = "Europe/Berlin"

[storage]
path = "data"

[tariff]
id = "flat"
rate = 0.25

{mqtt}
[[machine]]
id = "cnc-01"
off_below_w = 60
run_above_w = 900
rated_w = 15000
cost = {{ purchase = 1000.0, life_hours = 1000 }}
sensor = [{{ id = "s1" }}]

[[machine]]
id = "lathe-01"
off_below_w = 40
run_above_w = 700
rated_w = 11000
cost = {{ purchase = 1000.0, life_hours = 1000 }}
sensor = [{{ id = "s2" }}]
{extra}"""


MQTT_SECTION = """\
[mqtt]
host = "127.0.0.1"
port = {port}
username = "shopwatt-gateway"
secret_file = "mqtt.password"
batch_s = 0.2
"""


def write_shop(folder: Path, port: int = 1883, extra: str = "", mqtt: str = "") -> Path:
    """A two-machine shop.toml (sensors s1 on cnc-01, s2 on lathe-01) in `folder`.

    `mqtt` replaces the [mqtt] section; `extra` is appended (e.g. an [influxdb] section).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shop.toml"
    section = mqtt or MQTT_SECTION.format(port=port)
    path.write_text(SHOP_TOML.format(mqtt=section, extra=extra))
    return path


def now() -> datetime:
    """The provisioning clock."""
    return datetime.now(UTC)


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll `check` until it is true; AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Client:
    """A paho MQTT 3.1.1 client that records its CONNACK and the messages it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        client_id: str,
        ca: Path | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connack: Any = None
        self.disconnected = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.on_message = self._on_message
        self.client.connect(LOOPBACK, port)
        self.client.loop_start()

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self._connected.set()
        if rc.is_failure:
            c.disconnect()  # no reconnect loop for a refused client

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def accepted(self) -> bool:
        """Wait for the CONNACK (or a dropped connection); True when the broker said yes."""
        wait_until(
            "a CONNACK or a disconnect",
            lambda: self._connected.is_set() or self.disconnected.is_set(),
        )
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, *topics: str) -> None:
        """Subscribe (QoS 1) and wait for the SUBACK."""
        done = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        wait_until("a SUBACK", done.is_set)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the PUBACK (the broker took it, or dropped it)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def received(self, topic_suffix: str = "") -> list[tuple[str, bytes]]:
        """What arrived so far on topics ending with `topic_suffix`."""
        with self._lock:
            return [(t, p) for t, p in self.messages if t.endswith(topic_suffix)]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


class Clients:
    """Every Client a test opened, closed at the end."""

    def __init__(self) -> None:
        self._open: list[Client] = []

    def __call__(self, port: int, user: str | None, password: str | None, **kw: Any) -> Client:
        client = Client(port, user, password, client_id=f"t{len(self._open)}-{user}", **kw)
        self._open.append(client)
        return client

    def close(self) -> None:
        """Close them all."""
        for client in self._open:
            client.close()


def gateway_password(shop: Path) -> str:
    """The gateway's password, from the secret file [mqtt] names."""
    return (shop.parent / "mqtt.password").read_text().strip()


def topics(machine: str, sensor: str, leaves: Sequence[str]) -> list[str]:
    """The site's topics of one sensor."""
    return [f"shopwatt/v1/{SITE}/{machine}/{sensor}/{leaf}" for leaf in leaves]


def reading(seq: int) -> bytes:
    """A valid protocol reading with sequence number `seq`."""
    doc = json.loads(VECTOR.read_text())
    doc["s"] = seq
    return json.dumps(doc, separators=(",", ":")).encode()
