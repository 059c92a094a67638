"""`shopwatt provision ...` from the command line: files, permissions, idempotence, errors."""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from security_helpers import MQTT_SECTION, write_shop

from gateway.cli import main
from gateway.config import load_config
from gateway.errors import LedgerError
from gateway.inputs.mqtt_tls import tls_context
from gateway.ledger import Ledger


def run(shop: Path, *args: str) -> Result:
    """`shopwatt provision ARGS --config shop` in a fresh runner (stdout and stderr apart)."""
    return CliRunner().invoke(main, ["provision", *args, "--config", str(shop)])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


SENSOR = ("sensor", "--machine", "cnc-01", "--sensor", "s1", "--broker-host", "192.168.1.10")


def test_broker_then_sensor_writes_private_files_and_never_prints_a_password(shop: Path) -> None:
    broker = run(shop, "broker", "--listen", "192.168.1.10:1883", "--user", "root")
    assert broker.exit_code == 0, broker.output
    sensor = run(shop, *SENSOR, "--wifi-ssid", "workshop")
    assert sensor.exit_code == 0, sensor.output
    data = shop.parent / "data"
    config = data / "provision/sensors/s1/config.json"
    password = json.loads(config.read_text())["mqtt"]["password"]
    gateway_pw = (shop.parent / "mqtt.password").read_text().strip()
    for secret in (password, gateway_pw):
        assert secret not in broker.output + sensor.output
    assert f"wrote {config}" in sensor.output and "systemctl reload mosquitto" in sensor.output

    assert _mode(data / "provision") == 0o700
    assert _mode(data / "mosquitto") == 0o700
    private = ["provision/state.json", "provision/sensors/s1/config.json", "mosquitto/passwd"]
    private += ["mosquitto/acl", "mosquitto/mosquitto.conf"]
    assert {p: _mode(data / p) for p in private} == dict.fromkeys(private, 0o600)
    assert _mode(shop.parent / "mqtt.password") == 0o600
    passwd = (data / "mosquitto/passwd").read_text()
    assert password not in passwd and gateway_pw not in passwd
    assert sorted(line.split(":")[0] for line in passwd.splitlines()) == ["s1", "shopwatt-gateway"]
    conf = (data / "mosquitto/mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf and "listener 1883 192.168.1.10" in conf


def test_running_it_again_changes_nothing_until_rotate(shop: Path) -> None:
    assert run(shop, "broker", "--user", "root").exit_code == 0
    assert run(shop, *SENSOR).exit_code == 0
    data = shop.parent / "data"
    before = _tree(data)
    again = [run(shop, "broker", "--user", "root"), run(shop, *SENSOR)]
    assert all(r.exit_code == 0 and "nothing changed" in r.output for r in again)
    assert _tree(data) == before
    assert "password kept" in again[1].output

    rotated = run(shop, *SENSOR, "--rotate")
    assert "new password" in rotated.output
    after = _tree(data)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {
        "provision/state.json",
        "provision/sensors/s1/config.json",
        "mosquitto/passwd",
    }


def test_options_are_remembered_for_the_next_run(shop: Path) -> None:
    hardware = shop.parent / "wiring.json"
    hardware.write_text('{"channels": [{"name": "spindle", "pin": 34, "amps_per_volt": 30.0}]}')
    assert (
        run(shop, *SENSOR, "--wifi-ssid", "shop-wifi", "--hardware", str(hardware)).exit_code == 0
    )
    assert run(shop, "sensor", "--machine", "cnc-01", "--sensor", "s1").exit_code == 0
    doc = json.loads((shop.parent / "data/provision/sensors/s1/config.json").read_text())
    assert doc["wifi"]["ssid"] == "shop-wifi" and doc["mqtt"]["host"] == "192.168.1.10"
    assert doc["channels"][0]["amps_per_volt"] == 30.0


def test_without_wifi_or_wiring_the_notes_say_what_to_do(shop: Path) -> None:
    result = run(shop, *SENSOR)
    assert result.exit_code == 0
    assert "no Wi-Fi yet" in result.output and "firmware/config.local.json" in result.output


def test_the_wifi_password_comes_from_a_private_file_or_the_environment(shop: Path) -> None:
    wifi = shop.parent / "wifi.txt"
    wifi.write_text("wpa-secret\n")
    wifi.chmod(0o644)
    refused = run(shop, *SENSOR, "--wifi-ssid", "w", "--wifi-password-file", str(wifi))
    assert refused.exit_code == 2 and "chmod 600" in refused.output
    assert "wpa-secret" not in refused.output
    wifi.chmod(0o600)
    assert run(shop, *SENSOR, "--wifi-ssid", "w", "--wifi-password-file", str(wifi)).exit_code == 0
    doc = json.loads((shop.parent / "data/provision/sensors/s1/config.json").read_text())
    assert doc["wifi"]["password"] == "wpa-secret"
    env = CliRunner(env={"WIFI_PW": "from-env"}).invoke(
        main, ["provision", *SENSOR, "--wifi-password-env", "WIFI_PW", "--config", str(shop)]
    )
    assert env.exit_code == 0, env.output
    doc = json.loads((shop.parent / "data/provision/sensors/s1/config.json").read_text())
    assert doc["wifi"]["password"] == "from-env"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--machine", "lathe-01", "--sensor", "s1"), "has it on machine 'cnc-01', not 'lathe-01'"),
        (("--machine", "cnc-01", "--sensor", "s7"), 'has no [[machine.sensor]] with id = "s7"'),
        (("--machine", "cnc-01", "--sensor", "s1"), "--broker-host: needed, because mqtt.host"),
        (
            ("--machine", "cnc-01", "--sensor", "s1", "--broker-host", "a b"),
            "--broker-host 'a b': expected an IP address",
        ),
        (
            ("--machine", "cnc-01", "--sensor", "s1", "--broker-host", "gw@192.168.1.10"),
            "--broker-host 'gw@192.168.1.10': expected an IP address",
        ),
    ],
)
def test_sensor_mistakes_are_one_clear_line(
    shop: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(shop, "sensor", *args)
    assert result.exit_code == 2
    assert result.output.startswith("shopwatt: error: ") and message in result.output
    assert "Traceback" not in result.output


def test_an_unknown_machine_is_refused_in_the_words_of_every_other_command(shop: Path) -> None:
    with pytest.raises(LedgerError) as ledger_says:  # `shopwatt job start --machine mill-9`'s
        Ledger(load_config(shop)).machine("mill-9")
    result = run(shop, "sensor", "--machine", "mill-9", "--sensor", "s1")
    assert result.exit_code == 2
    assert result.output == f"shopwatt: error: {ledger_says.value}\n"
    assert "(known: cnc-01, lathe-01)" in result.output


def test_hardware_files_may_not_override_identity_or_credentials(shop: Path) -> None:
    bad = shop.parent / "wiring.json"
    bad.write_text('{"mqtt": {"host": "evil"}, "channels": []}')
    result = run(shop, *SENSOR, "--hardware", str(bad))
    assert result.exit_code == 2 and "mqtt: set by provisioning" in result.output
    bad.write_text("[1, 2]")
    assert "expected a JSON object" in run(shop, *SENSOR, "--hardware", str(bad)).output


def test_a_gateway_without_credentials_cannot_be_provisioned(tmp_path: Path) -> None:
    shop = write_shop(tmp_path)
    text = shop.read_text().replace('username = "shopwatt-gateway"\n', "")
    shop.write_text(text.replace('secret_file = "mqtt.password"\n', ""))
    result = run(shop, "broker", "--user", "root")
    assert result.exit_code == 2 and "[mqtt] needs username and secret_file" in result.output
    assert len(result.output.splitlines()) == 1  # one line, the example included
    # Refused sensors get no config.json: its password would be in no broker's file.
    sensor = run(shop, *SENSOR, "--wifi-ssid", "workshop")
    assert sensor.exit_code == 2 and "[mqtt] needs username" in sensor.output
    assert not (shop.parent / "data/provision/sensors").exists()


def test_listener_addresses_are_checked(shop: Path) -> None:
    for bad in ("1883", "example.com:1883", "10.0.0.1:0", "10.0.0.1:http"):
        result = run(shop, "broker", "--listen", bad, "--user", "root")
        assert result.exit_code == 2 and "expected ADDRESS:PORT" in result.output, bad
    twice = run(shop, "broker", "--listen", "0.0.0.0:1883", "--listen", "0.0.0.0:1883")
    assert "given twice" in twice.output
    assert run(shop, "broker", "--listen", "[::]:1883", "--user", "root").exit_code == 0


def test_revoking_an_unknown_sensor_names_the_known_ones(shop: Path) -> None:
    assert run(shop, *SENSOR).exit_code == 0
    result = run(shop, "revoke", "--sensor", "s2")
    assert result.exit_code == 2 and "(provisioned: s1)" in result.output
    assert run(shop, "revoke", "--sensor", "s1").exit_code == 0
    assert not (shop.parent / "data/provision/sensors/s1").exists()
    assert "s1:" not in (shop.parent / "data/mosquitto/passwd").read_text()


def test_a_damaged_state_file_is_refused_without_showing_its_secrets(shop: Path) -> None:
    assert run(shop, *SENSOR).exit_code == 0
    state = shop.parent / "data/provision/state.json"
    doc = json.loads(state.read_text())
    password = doc["sensors"]["s1"]["password"]
    doc["sensors"]["s1"]["broker_port"] = password  # a value of the wrong type
    state.write_text(json.dumps(doc))
    result = run(shop, *SENSOR)
    assert result.exit_code == 2 and "damaged provisioning state" in result.output
    assert "sensors.s1.broker_port" in result.output and password not in result.output
    state.write_text("{")
    assert "not valid JSON" in run(shop, *SENSOR).output


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_as_root_the_gateways_files_go_to_the_shop_owner_and_the_brokers_to_its_user(
    shop: Path,
) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(shop, nobody, -1)  # the gateway service runs as the owner of shop.toml
    assert run(shop, "broker", "--user", "mosquitto").exit_code == 0
    mosquitto = pwd.getpwnam("mosquitto").pw_uid
    data = shop.parent / "data"
    assert (shop.parent / "mqtt.password").stat().st_uid == nobody
    assert data.stat().st_uid == nobody and _mode(data) == 0o711
    broker_files = [data / "mosquitto" / n for n in ("passwd", "acl", "mosquitto.conf", "data")]
    assert {p.stat().st_uid for p in broker_files} == {mosquitto}
    assert (data / "provision").stat().st_uid == 0 and _mode(data / "provision") == 0o700


def test_a_tls_listener_tells_how_the_gateway_connects_and_that_config_works(
    shop: Path,
) -> None:
    result = run(
        shop, "broker", "--tls-listen", "0.0.0.0:8883", "--tls-name", "gw.local", "--user", "root"
    )
    assert result.exit_code == 0, result.output
    hint = next(line for line in result.output.splitlines() if "tls = true" in line)
    keys = dict(re.findall(r'(\w+) = ("[^"]*"|\'[^\']*\'|\w+)', hint))
    assert keys["port"] == "8883" and keys["host"] == "'gw.local'"
    mqtt = MQTT_SECTION.format(port=keys["port"]) + f"tls = true\nca_file = {keys['ca_file']}\n"
    cfg = load_config(write_shop(shop.parent, mqtt=mqtt))
    assert cfg.mqtt is not None
    context = tls_context(cfg.mqtt, shop.parent)
    assert context is not None
    assert [str(ca["subject"]) for ca in context.get_ca_certs()] == [
        "((('commonName', 'shopwatt northside local CA'),),)"
    ]
