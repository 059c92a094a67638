"""No secret in logs, error messages, the ledger or any other file the gateway writes.

A shop is provisioned (broker, a sensor with Wi-Fi) from the command line, `shopwatt run`
starts with an MQTT password and an InfluxDB password from 0600 files, takes readings
from the provisioned sensor, and is then made to fail in the ways a user can cause. Every
secret is then searched for, as bytes, in everything that was printed or written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from security_helpers import Clients, write_shop

from agent.localservers import ProvisionedBroker, sensor_password
from agent.serviceshop import FakeSensor, Gateway, ledger_readings, wait_for
from gateway.cli import main
from gateway.config import load_config
from tests.servers import Influxd

ROOT = Path(__file__).resolve().parents[2]
INFLUX_PASSWORD = "influx-pw-7f3a9c21e8"
WIFI_PASSWORD = "wifi-pw-5b6c7d8e9f"


def _private(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    return result.output + (repr(result.exception) if result.exception else "")


def _files(folder: Path, skip: Path) -> dict[Path, bytes]:
    """Every file under `folder` except those under `skip` (where secrets belong)."""
    return {
        p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_relative_to(skip)
    }


def test_secrets_appear_nowhere_but_in_their_own_files(
    tmp_path: Path, influxd: Influxd, influx_db: str, clients: Clients
) -> None:
    influx = (
        f'[influxdb]\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\n'
        'username = "shopwatt"\nsecret_file = "influx.password"\nbackoff_max_s = 1\n'
    )
    shop = write_shop(tmp_path, extra=influx)
    _private(tmp_path / "influx.password", INFLUX_PASSWORD)
    wifi = _private(tmp_path / "wifi.password", WIFI_PASSWORD)
    config = ["--config", str(shop)]
    printed = [
        _cli("provision", "broker", "--user", "root", *config),
        _cli("provision", "sensor", "--machine", "cnc-01", "--sensor", "s1", *config,
             "--broker-host", "127.0.0.1", "--wifi-ssid", "w", "--wifi-password-file", str(wifi)),
        _cli("provision", "sensor", "--machine", "cnc-01", "--sensor", "s1", *config, "--rotate"),
    ]  # fmt: skip
    broker = ProvisionedBroker(shop).start()
    try:
        # The gateway's [mqtt] port must be the broker's: rewrite it now that it is known.
        shop.write_text(shop.read_text().replace("port = 1883", f"port = {broker.port}"))
        cfg = load_config(shop)
        secrets = {
            "gateway MQTT password": (tmp_path / "mqtt.password").read_text().strip(),
            "sensor password": sensor_password(broker, "s1"),
            "InfluxDB password": INFLUX_PASSWORD,
            "Wi-Fi password": WIFI_PASSWORD,
        }
        sensor = FakeSensor("cnc-01", "s1", boot=3)
        s1 = clients(broker.port, "s1", secrets["sensor password"])
        assert s1.accepted()
        with Gateway(shop) as gateway:
            for topic, payload in sensor.readings([90, 1800, 1800, 90]):
                s1.publish(topic.replace("test-shop", "northside"), payload)
            wait_for("4 readings", lambda: ledger_readings(cfg).get("cnc-01") == 4, gateway)
            wait_for(
                "points in InfluxDB",
                lambda: influxd.rows('SELECT count(*) FROM "power"', influx_db),
                gateway,
            )
            assert gateway.stop() == 0

        # What a user can get wrong: a readable secret file, a wrong password, a bad flag.
        (tmp_path / "influx.password").chmod(0o644)
        printed.append(_run(shop))
        (tmp_path / "influx.password").chmod(0o600)
        _private(tmp_path / "mqtt.password", "not-the-password")
        refused = Gateway(shop).start()
        wait_for("the broker's refusal in the log", lambda: "refused" in refused.log(), refused)
        refused.stop()
        printed += [
            _cli("provision", "sensor", "--machine", "lathe-01", "--sensor", "s1", *config),
            _cli("provision", "revoke", "--sensor", "nope", *config),
            broker.log_since_start(),
        ]
    finally:
        broker.close()

    assert "mode 0644" in printed[3], printed[3]  # the refusal itself was printed
    written = _files(tmp_path, skip=tmp_path / "data/provision")
    assert any(p.suffix == ".sqlite" for p in written) and any(p.suffix == ".db" for p in written)
    for name, secret in secrets.items():
        for k, text in enumerate(printed):
            assert secret not in text, f"{name} printed by step {k}"
        leaked = [str(p) for p, data in written.items() if secret.encode() in data]
        own = {"gateway MQTT password": "mqtt.password", "InfluxDB password": "influx.password",
               "Wi-Fi password": "wifi.password"}.get(name)  # fmt: skip
        assert [p for p in leaked if Path(p).name != own] == [], f"{name} found in {leaked}"


def _run(shop: Path) -> str:
    """`shopwatt run` to its first error; stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(shop)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    return (done.stdout + done.stderr).decode()
