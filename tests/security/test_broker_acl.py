"""A real mosquitto running the generated config: who gets in, and who may publish what."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from security_helpers import (
    GATEWAY_USER,
    SITE,
    Client,
    Clients,
    gateway_password,
    now,
    wait_until,
)

from agent.localservers import ProvisionedBroker, sensor_password
from firmware import config as fw_config
from firmware.mqtt import Client as FirmwareClient
from firmware.mqtt_codec import MqttError
from gateway.config import load_config
from gateway.inputs.mqtt import deadletter_topic
from gateway.provision.sensor import SensorOptions, provision_sensor, revoke_sensor
from gateway.secrets import read_secret_file

ROOT = Path(__file__).resolve().parents[2]
READING = (ROOT / "tests/vectors/reading/valid/three_channels.json").read_bytes().strip()


def topic(machine: str, leaf: str) -> str:
    """A topic of this site."""
    return f"shopwatt/v1/{SITE}/{machine}/{leaf}"


def provision(shop: Path, machine: str, sensor: str, **options: object) -> fw_config.Config:
    """Provision a sensor and return its config.json as the firmware itself parses it."""
    opts = SensorOptions(
        machine,
        sensor,
        broker_host="127.0.0.1",
        wifi_ssid="workshop",
        **options,  # type: ignore[arg-type]
    )
    result = provision_sensor(load_config(shop), opts, now())
    fw_base = (ROOT / "firmware/config.json").read_text()
    return fw_config.parse(
        [("config.json", fw_base), ("config.local.json", result.config.read_text())], "a1b2c3"
    )


def reloaded(broker: ProvisionedBroker, clients: Clients, user: str, password: str) -> Client:
    """SIGHUP the broker and wait until `user` gets in with `password`."""
    broker.reload()
    client: list[Client] = []

    def accepted() -> bool:
        client.append(clients(broker.port, user, password))
        return client[-1].accepted()

    wait_until(f"{user} accepted after the reload", accepted)
    return client[-1]


def firmware_publish(fw: fw_config.Config, port: int, messages: list[tuple[str, bytes]]) -> None:
    """Connect with the firmware's own MQTT client and credentials, publish QoS 1, leave."""

    async def session() -> None:
        client = FirmwareClient(
            "127.0.0.1",
            port,
            "shopwatt-" + fw.sensor,
            user=fw.mqtt_user,
            password=fw.mqtt_password,
        )
        await client.connect()
        for t, payload in messages:
            await client.publish(t, payload)
        await client.close(goodbye=True)

    asyncio.run(session())


def gateway(broker: ProvisionedBroker, shop: Path, clients: Clients) -> Client:
    """The gateway's user, subscribed to its whole site."""
    gw = clients(broker.port, GATEWAY_USER, gateway_password(shop))
    assert gw.accepted()
    gw.subscribe(f"shopwatt/v1/{SITE}/#")
    return gw


def test_anonymous_clients_and_wrong_passwords_are_refused(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    assert not clients(broker.port, None, None).accepted()
    assert not clients(broker.port, GATEWAY_USER, "guess").accepted()
    assert not clients(broker.port, "s1", gateway_password(shop)).accepted()
    assert clients(broker.port, GATEWAY_USER, gateway_password(shop)).accepted()


def test_the_gateway_receives_its_sensors_but_not_what_one_forges_for_another(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    s1 = provision(shop, "cnc-01", "s1")
    provision(shop, "lathe-01", "s2")
    reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    gw = gateway(broker, shop, clients)

    forged = [
        (topic("lathe-01", "s2/reading"), READING),  # another machine's sensor
        (topic("cnc-01", "s2/reading"), READING),  # another sensor id on its own machine
        (topic("cnc-01", "job"), b'{"v":1}'),  # job events were not granted
        (topic("cnc-01", "s2/cmd"), b'{"v":1,"cmd":"reboot"}'),  # commands are the gateway's
        ("shopwatt/v1/other-site/cnc-01/s1/reading", READING),
    ]
    own = [(topic("cnc-01", "s1/reading"), READING), (topic("cnc-01", "s1/status"), b"{}")]
    # QoS 1 from one connection arrives in order: once the last own message is in, every
    # forged one (sent first) would have been too. The sensor also stays connected after
    # a denied publish (it would not with max_queued_messages 0 on mosquitto 2.0.11).
    firmware_publish(s1, broker.port, forged + own)
    wait_until("the sensor's own status", lambda: bool(gw.received("s1/status")))
    assert [t for t, _ in gw.received()] == [t for t, _ in own]
    assert gw.received("s1/reading") == [own[0]]


def test_a_sensor_reads_its_own_commands_only(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    provision(shop, "cnc-01", "s1")
    provision(shop, "lathe-01", "s2")
    s1 = reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    s1.subscribe("shopwatt/#", topic("lathe-01", "s2/cmd"), topic("cnc-01", "s1/cmd"))
    gw = gateway(broker, shop, clients)
    s2 = clients(broker.port, "s2", sensor_password(broker, "s2"))
    assert s2.accepted()
    s2.publish(topic("lathe-01", "s2/reading"), READING)
    gw.publish(topic("lathe-01", "s2/cmd"), b'{"v":1,"cmd":"status"}')
    gw.publish(topic("cnc-01", "s1/cmd"), b'{"v":1,"cmd":"persist"}')
    wait_until("s1's own command", lambda: bool(s1.received("s1/cmd")))
    assert {t for t, _ in s1.received()} == {topic("cnc-01", "s1/cmd")}


def test_the_gateway_cannot_publish_readings_in_a_sensors_name(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    provision(shop, "cnc-01", "s1")
    watcher = reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    gw = gateway(broker, shop, clients)
    watcher.subscribe(topic("cnc-01", "s1/cmd"))
    gw.publish(topic("cnc-01", "s1/reading"), READING)
    gw.publish(deadletter_topic(SITE), b"junk")  # its own topic
    gw.publish(topic("cnc-01", "s1/cmd"), b'{"v":1,"cmd":"status"}')
    wait_until("the command", lambda: bool(watcher.received("s1/cmd")))
    wait_until("the dead letter", lambda: bool(gw.received("deadletter")))
    assert gw.received("s1/reading") == []


def test_job_events_only_from_a_sensor_provisioned_for_them(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    s1 = provision(shop, "cnc-01", "s1", job_events=True)
    s2 = provision(shop, "lathe-01", "s2")
    reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    gw = gateway(broker, shop, clients)
    event = b'{"v":1,"event":"start","job":"J-1","customer":"A","t":1763805600000}'
    firmware_publish(s2, broker.port, [(topic("lathe-01", "job"), event)])
    firmware_publish(s1, broker.port, [(topic("lathe-01", "job"), event)])  # not its machine
    firmware_publish(s1, broker.port, [(topic("cnc-01", "job"), event)])
    wait_until("cnc-01's job event", lambda: bool(gw.received("/job")))
    assert [t for t, _ in gw.received("/job")] == [topic("cnc-01", "job")]


def test_rotate_and_revoke_take_effect_at_the_reload(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    provision(shop, "cnc-01", "s1")
    first = sensor_password(broker, "s1")
    old_session = reloaded(broker, clients, "s1", first)

    provision(shop, "cnc-01", "s1")  # again, without --rotate: same password
    assert sensor_password(broker, "s1") == first

    s1 = provision(shop, "cnc-01", "s1", rotate=True)
    assert s1.mqtt_password == sensor_password(broker, "s1") != first
    new_session = reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    # The reload also ends connections made with the old password, not only new ones.
    wait_until("the old password's session to end", old_session.disconnected.is_set)
    assert not clients(broker.port, "s1", first).accepted()

    revoke_sensor(load_config(shop), "s1")
    broker.reload()
    wait_until("the revoked sensor's session to end", new_session.disconnected.is_set)
    assert not clients(broker.port, "s1", s1.mqtt_password or "").accepted()
    with pytest.raises(MqttError, match="refused"):
        firmware_publish(s1, broker.port, [])


def test_the_generated_config_json_is_what_the_firmware_accepts(shop: Path) -> None:
    wiring = json.loads((ROOT / "firmware/config.json").read_text())
    hardware = {k: v for k, v in wiring.items() if k not in ("site", "machine", "sensor", "mqtt")}
    wifi_pw = shop.parent / "wifi.password"
    wifi_pw.write_text("workshop-wpa2\n")
    wifi_pw.chmod(0o600)
    opts = SensorOptions(
        "lathe-01",
        "s2",
        broker_host="192.168.1.10",
        wifi_ssid="workshop",
        wifi_password=read_secret_file(wifi_pw, "--wifi-password-file"),
        hardware=hardware,
    )
    result = provision_sensor(load_config(shop), opts, now())
    fw = fw_config.parse([("config.json", result.config.read_text())], "a1b2c3")
    assert (fw.site, fw.machine, fw.sensor) == (SITE, "lathe-01", "s2")
    assert (fw.mqtt_host, fw.mqtt_port, fw.mqtt_user) == ("192.168.1.10", 1883, "s2")
    assert (fw.wifi_ssid, fw.wifi_password) == ("workshop", "workshop-wpa2")
    assert [c["name"] for c in fw.channels] == [c["name"] for c in wiring["channels"]]
    assert fw.mqtt_password and len(fw.mqtt_password) >= 32


def test_a_sensor_that_vanishes_is_reported_offline_by_its_last_will(
    broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    s1 = provision(shop, "cnc-01", "s1")
    reloaded(broker, clients, "s1", sensor_password(broker, "s1"))
    gw = gateway(broker, shop, clients)
    offline = b'{"v":1,"state":"offline","boot":17}'

    async def vanish() -> None:
        will = (topic("cnc-01", "s1/status"), offline, 1, True)
        client = FirmwareClient(
            "127.0.0.1", broker.port, "shopwatt-s1", will=will, user="s1", password=s1.mqtt_password
        )
        await client.connect()
        await client.close(goodbye=False)  # the socket drops, no DISCONNECT: power cut

    asyncio.run(vanish())
    wait_until("the last will", lambda: bool(gw.received("s1/status")))
    assert gw.received("s1/status") == [(topic("cnc-01", "s1/status"), offline)]
