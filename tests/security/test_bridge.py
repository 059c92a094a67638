"""examples/bridge/ run for real: a site broker bridged to a central one, a central InfluxDB.

Two mosquitto brokers on loopback play the site and the centre. The example files are
used as shipped; only addresses, paths and passwords are substituted (and each
substitution must match, so the example and this test cannot drift apart).
"""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from security_helpers import (
    GATEWAY_USER,
    Client,
    Clients,
    gateway_password,
    now,
    reading,
    wait_until,
    write_shop,
)

from agent.localservers import MosquittoProcess, ProvisionedBroker, sensor_password
from gateway.config import load_config
from gateway.inputs.mqtt import MqttInput
from gateway.outputs.drain import open_influx_output
from gateway.provision.passwd import hash_password, render_passwd
from gateway.provision.sensor import SensorOptions, provision_sensor
from gateway.provision.tls import CertPaths, ensure_ca, ensure_server_cert
from gateway.secrets import Secret
from tests.servers import Influxd, ServerPool, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/bridge"
BRIDGE_PASSWORD = "bridge-pw-0a1b2c"
CENTRAL_PASSWORD = "central-pw-3d4e5f"
NORTH = "shopwatt/v1/northside"


def example(name: str, substitutions: Mapping[str, str]) -> str:
    """An example file with each `old` replaced by `new`; every `old` must be in it."""
    text = (EXAMPLE / name).read_text()
    for old, new in substitutions.items():
        assert old in text, f"examples/bridge/{name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


class CentralBroker(MosquittoProcess):
    """examples/bridge/central/ with its TLS files from a throwaway CA and two users."""

    name = "mosquitto-central"

    def _pick_ports(self) -> None:
        self.port, self.tls_port = free_port(), free_port()
        d = self.workdir
        self.ca = CertPaths(d / "ca.crt", d / "ca.key")
        ensure_ca(self.ca, "central", now(), None)
        ensure_server_cert(
            self.ca, CertPaths(d / "server.crt", d / "server.key"), ["127.0.0.1"], now(), None
        )
        users = {"bridge-northside": BRIDGE_PASSWORD, "central-gateway": CENTRAL_PASSWORD}
        (d / "passwd").write_bytes(
            render_passwd({u: hash_password(Secret(p)) for u, p in users.items()})
        )
        shutil.copy(EXAMPLE / "central/acl", d / "acl")
        conf = example(
            "central/mosquitto.conf",
            {
                "/etc/mosquitto/shopwatt/": f"{d}/",
                "/var/lib/mosquitto/": f"{d}/",
                "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1",
                "listener 8883 0.0.0.0": f"listener {self.tls_port} 127.0.0.1",
            },
        )
        self.config_path = d / "mosquitto.conf"
        self.config_path.write_text(conf + f"user {getpass.getuser()}\n")

    def _listen_port(self) -> int:
        return self.tls_port


@pytest.fixture
def central() -> Iterator[CentralBroker]:
    """The central broker, running."""
    broker = CentralBroker()
    try:
        yield broker.start()
    finally:
        broker.close()


@pytest.fixture
def site(tmp_path: Path, central: CentralBroker) -> Iterator[ProvisionedBroker]:
    """The site's provisioned broker with examples/bridge/site-bridge.conf in conf.d."""
    shop = write_shop(tmp_path / "site")
    provision_sensor(
        load_config(shop), SensorOptions("cnc-01", "s1", broker_host="127.0.0.1"), now()
    )
    broker = ProvisionedBroker(shop)
    bridge = example(
        "site-bridge.conf",
        {
            "central.example.net:8883": f"127.0.0.1:{central.tls_port}",
            "/etc/shopwatt/central-ca.crt": str(central.ca.cert),
            "remote_password CHANGE-ME": f"remote_password {BRIDGE_PASSWORD}",
            "restart_timeout 5 60": "restart_timeout 1 2",  # reconnect fast in the test
        },
    )
    conf_d = broker.layout.broker / "conf.d"
    (conf_d / "bridge.conf").write_text(bridge)
    (conf_d / "bridge.conf").chmod(0o600)
    try:
        yield broker.start()
    finally:
        broker.close()


@pytest.fixture
def central_gateway(tmp_path: Path, central: CentralBroker) -> Iterator[MqttInput]:
    """The gateway's MQTT input at the centre, as examples/bridge/central-gateway.toml says."""
    mqtt = example("central-gateway.toml", {"port = 1883": f"port = {central.port}"})
    shop = write_shop(tmp_path / "centre", mqtt=mqtt)
    secret = shop.parent / "central-mqtt.password"
    secret.write_text(CENTRAL_PASSWORD + "\n")
    secret.chmod(0o600)
    gateway = MqttInput(load_config(shop))
    gateway.start()
    wait_until("the central gateway's subscription", gateway.subscribed.is_set)
    try:
        yield gateway
    finally:
        gateway.stop()


def _sequences(gateway: MqttInput, seen: list[int]) -> list[int]:
    box = gateway.take()
    seen += [r.s for sensor, r in box.readings if sensor == "s1"]
    gateway.ack(box)
    return seen


def test_site_readings_reach_the_gateway_at_the_centre_through_outages(
    site: ProvisionedBroker, central: CentralBroker, central_gateway: MqttInput, clients: Clients
) -> None:
    s1 = clients(site.port, "s1", sensor_password(site, "s1"))
    assert s1.accepted()
    seen: list[int] = []
    s1.publish(f"{NORTH}/cnc-01/s1/reading", reading(1))
    wait_until("reading 1 at the centre", lambda: 1 in _sequences(central_gateway, seen))

    central.stop()  # the WAN or the centre is down: the site broker keeps the bridge's queue
    for seq in (2, 3, 4):
        s1.publish(f"{NORTH}/cnc-01/s1/reading", reading(seq))
    central.start()
    wait_until(
        "readings 2-4 after the outage", lambda: {2, 3, 4} <= set(_sequences(central_gateway, seen))
    )
    assert sorted(set(seen)) == [1, 2, 3, 4]
    # The site's own gateway is not affected by any of it.
    local = clients(site.port, GATEWAY_USER, gateway_password(site.shop))
    assert local.accepted()


def test_a_sites_credentials_write_only_that_sites_topics_at_the_centre(
    central: CentralBroker, clients: Clients
) -> None:
    watcher = clients(central.port, "central-gateway", CENTRAL_PASSWORD)
    assert watcher.accepted()
    watcher.subscribe("shopwatt/v1/#")
    bridge: Client = clients(
        central.tls_port, "bridge-northside", BRIDGE_PASSWORD, ca=central.ca.cert
    )
    assert bridge.accepted()
    bridge.publish("shopwatt/v1/southside/mill/s9/reading", reading(1))
    bridge.publish(f"{NORTH}/cnc-01/s1/reading", reading(2))
    wait_until("northside's reading", lambda: bool(watcher.received("reading")))
    assert [t for t, _ in watcher.received()] == [f"{NORTH}/cnc-01/s1/reading"]
    assert not clients(central.port, "bridge-northside", "wrong").accepted()
    assert not clients(central.port, None, None).accepted()


def test_a_site_gateway_writes_to_a_central_influxdb_as_the_example_says(
    tmp_path: Path, influxd: Influxd, influx_db: str, servers: ServerPool
) -> None:
    front = servers.v2_front(influxd)  # an InfluxDB 2.x write API in front of influxd 1.x
    section = example(
        "remote-influxdb.toml",
        {
            "https://influx.central.example.net:8086": front.url,
            'bucket = "shopwatt"': f'bucket = "{influx_db}"',
        },
    )
    shop = write_shop(tmp_path, extra=section)
    token = tmp_path / "influx.token"
    token.write_text("site-write-token\n")
    token.chmod(0o600)
    outbox, drainer = open_influx_output(load_config(shop))
    try:
        outbox.put(["power,site=northside,machine=cnc-01,sensor=s1 w=1500.0 1763805600000"])
        drainer.start()
        query = 'SELECT "w", "site" FROM "power"'
        wait_until("the point in InfluxDB", lambda: bool(influxd.rows(query, influx_db)))
    finally:
        drainer.stop()
        outbox.close()
    rows = influxd.rows(query, influx_db)
    assert [(r["site"], r["w"]) for r in rows] == [("northside", 1500.0)]
    assert front.requests[-1].headers["authorization"] == "Token site-write-token"
