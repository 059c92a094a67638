"""The gateway's own MQTT connection over TLS: [mqtt] tls, ca_file, cert_file, key_file.

A real provisioned mosquitto with a TLS listener (and a plain one, to show what a wrong
port looks like); the gateway is the service's own MqttInput.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import (
    MQTT_SECTION,
    Clients,
    gateway_password,
    now,
    reading,
    wait_until,
    write_shop,
)

from agent.localservers import ProvisionedBroker, sensor_password
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.inputs.mqtt import MqttInput
from gateway.inputs.mqtt_tls import tls_context
from gateway.provision.sensor import SensorOptions, provision_sensor
from gateway.provision.tls import CertPaths, ensure_ca, ensure_server_cert
from tests.servers import ServerError


def tls_shop(shop: Path, port: int, tls: str) -> Path:
    """Rewrite shop.toml's [mqtt] (the broker keeps running with what it was given)."""
    return write_shop(shop.parent, mqtt=MQTT_SECTION.format(port=port) + tls + "\n")


@pytest.fixture
def site(shop: Path) -> Iterator[ProvisionedBroker]:
    """The shop's broker (a TLS and a plain listener, local CA) with sensor s1, running."""
    provision_sensor(
        load_config(shop), SensorOptions("cnc-01", "s1", broker_host="127.0.0.1"), now()
    )
    broker = ProvisionedBroker(shop, tls=True, plain=True)
    try:
        broker.start()
    except ServerError as err:
        broker.close()
        pytest.fail(str(err), pytrace=False)
    yield broker
    broker.close()


@pytest.fixture
def gateways() -> Iterator[list[MqttInput]]:
    """Started MqttInputs, stopped after the test."""
    started: list[MqttInput] = []
    yield started
    for gateway in started:
        gateway.stop()


def _start(shop: Path, started: list[MqttInput]) -> MqttInput:
    gateway = MqttInput(load_config(shop))
    started.append(gateway)
    gateway.start()
    return gateway


def test_the_gateway_receives_a_sensors_reading_over_the_tls_listener(
    site: ProvisionedBroker, shop: Path, clients: Clients, gateways: list[MqttInput]
) -> None:
    ca = site.layout.ca_cert
    # A relative ca_file is relative to shop.toml, wherever the gateway was started.
    relative = os.path.relpath(ca, shop.parent)
    tls_shop(shop, site.tls_port, f'tls = true\nca_file = "{relative}"')
    gateway = _start(shop, gateways)
    wait_until("the gateway's subscription over TLS", gateway.subscribed.is_set)

    s1 = clients(site.tls_port, "s1", sensor_password(site, "s1"), ca=ca)
    assert s1.accepted()
    s1.publish("shopwatt/v1/northside/cnc-01/s1/reading", reading(7))
    seen: list[int] = []

    def arrived() -> bool:
        seen.extend(r.s for sensor, r in gateway.take().readings if sensor == "s1")
        return 7 in seen

    wait_until("s1's reading at the gateway", arrived)


def test_with_a_ca_that_did_not_sign_the_broker_the_gateway_stays_out_and_says_why(
    site: ProvisionedBroker,
    shop: Path,
    tmp_path: Path,
    gateways: list[MqttInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stranger = CertPaths(tmp_path / "other-ca.crt", tmp_path / "other-ca.key")
    ensure_ca(stranger, "elsewhere", now(), None)
    tls_shop(shop, site.tls_port, f'tls = true\nca_file = "{stranger.cert}"')
    with caplog.at_level(logging.ERROR, logger="shopwatt.mqtt"):
        gateway = _start(shop, gateways)
        wait_until("the refusal in the log", lambda: "certificate was refused" in caplog.text)
    assert not gateway.connected.is_set() and gateway.counts["connects"] == 0
    text = caplog.text
    assert f"mqtt.ca_file = '{stranger.cert}'" in text
    assert gateway_password(shop) not in text


def test_tls_on_the_plain_port_fails_with_a_hint_at_the_port(
    site: ProvisionedBroker,
    shop: Path,
    gateways: list[MqttInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tls_shop(shop, site.port, f'tls = true\nca_file = "{site.layout.ca_cert}"')
    with caplog.at_level(logging.ERROR, logger="shopwatt.mqtt"):
        gateway = _start(shop, gateways)
        wait_until("the failed handshake in the log", lambda: "TLS handshake" in caplog.text)
    assert not gateway.connected.is_set() and gateway.counts["connects"] == 0
    assert "plain MQTT is usually port 1883, TLS 8883" in caplog.text


def test_the_context_verifies_the_broker_and_speaks_tls_1_2_or_newer(shop: Path) -> None:
    cfg = load_config(tls_shop(shop, 8883, "tls = true"))  # no ca_file: the system's CAs
    assert cfg.mqtt is not None and cfg.mqtt.port == 8883
    context = tls_context(cfg.mqtt, shop.parent)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_is_off_and_the_port_1883_unless_asked_for(shop: Path) -> None:
    cfg = load_config(write_shop(shop.parent, mqtt='[mqtt]\nhost = "127.0.0.1"\n'))
    assert cfg.mqtt is not None and (cfg.mqtt.tls, cfg.mqtt.port) == (False, 1883)
    assert tls_context(cfg.mqtt, shop.parent) is None


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        ('ca_file = "ca.crt"', "mqtt: ca_file = 'ca.crt' needs tls = true"),
        ('tls = true\ncert_file = "gw.crt"', "needs both cert_file and key_file"),
        ("tls = true\ntls_insecure = true", "mqtt.tls_insecure: unknown key"),
        ("tls = true\nverify_hostname = false", "mqtt.verify_hostname: unknown key"),
        ('tls = "yes"', "mqtt.tls = 'yes'"),
    ],
)
def test_a_bad_tls_key_names_file_key_and_value(shop: Path, tls: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"shop\.toml: ") as err:
        load_config(tls_shop(shop, 8883, tls))
    assert expected in str(err.value)


def test_a_missing_or_damaged_ca_file_is_named(shop: Path) -> None:
    cfg = load_config(tls_shop(shop, 8883, 'tls = true\nca_file = "certs/ca.pem"'))
    assert cfg.mqtt is not None
    with pytest.raises(ConfigError, match=r"mqtt.ca_file = 'certs/ca.pem': .*is not a file"):
        tls_context(cfg.mqtt, shop.parent)
    (shop.parent / "certs").mkdir()
    (shop.parent / "certs/ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"mqtt.ca_file = 'certs/ca.pem': .*no PEM certificate"):
        tls_context(cfg.mqtt, shop.parent)


def _client_cert(folder: Path) -> CertPaths:
    """A certificate and key from a throwaway CA, the key written 0600."""
    folder.mkdir()
    ca = CertPaths(folder / "ca.crt", folder / "ca.key")
    ensure_ca(ca, "client", now(), None)
    pair = CertPaths(folder / "gateway.crt", folder / "gateway.key")
    ensure_server_cert(ca, pair, ["gateway.local"], now(), None)
    return pair


def test_a_client_key_others_can_read_is_refused_and_a_private_one_is_loaded(
    shop: Path,
) -> None:
    pair = _client_cert(shop.parent / "client")
    keys = f'tls = true\ncert_file = "{pair.cert}"\nkey_file = "client/gateway.key"'
    cfg = load_config(tls_shop(shop, 8883, keys))
    assert cfg.mqtt is not None
    assert pair.key.stat().st_mode & 0o777 == 0o600
    assert tls_context(cfg.mqtt, shop.parent) is not None
    pair.key.chmod(0o640)
    with pytest.raises(ConfigError) as err:
        tls_context(cfg.mqtt, shop.parent)
    assert "mqtt.key_file = 'client/gateway.key'" in str(err.value)
    assert "chmod 600" in str(err.value)
