"""`shopwatt provision ...`: the commands; the work is in broker.py and sensor.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cligroup import OnceCommand, config_option
from gateway.config import load_config
from gateway.errors import ProvisionError
from gateway.provision.broker import MAX_QUEUED_MB, BrokerOptions, Endpoint, provision_broker
from gateway.provision.sensor import (
    SensorOptions,
    load_hardware,
    provision_sensor,
    revoke_sensor,
)
from gateway.secrets import Secret, read_secret_env, read_secret_file

_RELOAD = (
    "reload the broker so it reads the new users and ACL: `sudo systemctl reload mosquitto` "
    "(or `kill -HUP <its pid>`)"
)
_file = click.Path(dir_okay=False, path_type=Path)


def _now() -> datetime:
    return datetime.now(UTC)


def _report(changed: Sequence[Path]) -> None:
    for path in changed:
        click.echo(f"wrote {path}")
    if not changed:
        click.echo("nothing changed")


@click.command(cls=OnceCommand)
@click.option(
    "--listen",
    multiple=True,
    metavar="ADDRESS:PORT",
    help="A plain MQTT listener (repeatable); default 0.0.0.0 and [mqtt] port.",
)
@click.option(
    "--tls-listen", multiple=True, metavar="ADDRESS:PORT", help="A TLS listener, e.g. 0.0.0.0:8883."
)
@click.option(
    "--tls-name",
    multiple=True,
    metavar="NAME",
    help="A host name or IP address clients use to reach the TLS listener (repeatable).",
)
@click.option("--user", default="mosquitto", show_default=True, help="System user of mosquitto.")
@click.option("--renew-cert", is_flag=True, help="Issue a new server certificate now.")
@click.option(
    "--max-queued-mb",
    type=click.IntRange(1),
    default=MAX_QUEUED_MB,
    show_default=True,
    help="Payload MB the broker keeps for an absent gateway.",
)
def broker(
    config_path: Path,
    listen: tuple[str, ...],
    tls_listen: tuple[str, ...],
    tls_name: tuple[str, ...],
    user: str,
    renew_cert: bool,
    max_queued_mb: int,
) -> None:
    """Write the site broker's mosquitto.conf, password file, ACL and TLS certificates."""
    cfg = load_config(config_path)
    default_port = cfg.mqtt.port if cfg.mqtt else 1883
    plain = [Endpoint.parse(t, "--listen") for t in listen]
    if not listen and not tls_listen:
        plain = [Endpoint("0.0.0.0", default_port)]
    opts = BrokerOptions(
        listen=plain,
        tls_listen=[Endpoint.parse(t, "--tls-listen") for t in tls_listen],
        tls_names=tls_name,
        user=user,
        renew_cert=renew_cert,
        max_queued_mb=max_queued_mb,
    )
    result = provision_broker(cfg, opts, _now())
    if result.ca_created:
        click.echo(f"created a local CA: give clients {result.conf.parent / 'ca.crt'}")
    _report(result.changed)
    if opts.tls_listen and not (cfg.mqtt and cfg.mqtt.tls):
        names = " or ".join(repr(n) for n in opts.tls_names) or "the broker's --tls-name"
        click.echo(
            "a gateway reaching this broker over TLS: in its [mqtt] set tls = true, "
            f'port = {opts.tls_listen[0].port}, ca_file = "{result.conf.parent / "ca.crt"}", '
            f"host = {names} (docs/security.md)"
        )
    click.echo(f"run the broker with: mosquitto -c {result.conf}")
    if result.changed:
        click.echo(f"a broker already running: {_RELOAD}")


@click.command(cls=OnceCommand)
@click.option("--machine", required=True, help="The machine (or site meter) id in shop.toml.")
@click.option("--sensor", "sensor_id", required=True, help="The sensor id in shop.toml.")
@click.option("--rotate", is_flag=True, help="Give an already provisioned sensor a new password.")
@click.option("--broker-host", help="The broker's address as the sensor reaches it.")
@click.option("--broker-port", type=click.IntRange(1, 65535), help="Default: [mqtt] port.")
@click.option("--wifi-ssid", help="The workshop Wi-Fi's name.")
@click.option("--wifi-password-file", type=_file, help="A 0600 file holding the Wi-Fi password.")
@click.option("--wifi-password-env", metavar="NAME", help="... or an environment variable's name.")
@click.option(
    "--hardware",
    type=_file,
    help="JSON with the sensor's wiring keys of config.json (channels, voltage, meter, ...).",
)
@click.option(
    "--job-events/--no-job-events",
    default=None,
    help="May the sensor publish its machine's job events (a start/stop button)?",
)
def sensor(
    config_path: Path,
    machine: str,
    sensor_id: str,
    rotate: bool,
    broker_host: str | None,
    broker_port: int | None,
    wifi_ssid: str | None,
    wifi_password_file: Path | None,
    wifi_password_env: str | None,
    hardware: Path | None,
    job_events: bool | None,
) -> None:
    """Create a sensor's broker credentials and its firmware config.json."""
    cfg = load_config(config_path)
    opts = SensorOptions(
        machine=machine,
        sensor=sensor_id,
        rotate=rotate,
        broker_host=broker_host,
        broker_port=broker_port,
        wifi_ssid=wifi_ssid,
        wifi_password=_wifi_password(wifi_password_file, wifi_password_env),
        hardware=load_hardware(hardware) if hardware else None,
        job_events=job_events,
    )
    result = provision_sensor(cfg, opts, _now())
    what = {
        "created": "new credentials",
        "rotated": "new password (the old one stops working when the broker reloads)",
        "kept": "password kept (--rotate for a new one)",
    }
    click.echo(f"sensor {sensor_id} on {machine}: {what[result.action]}")
    _report(result.changed)
    if result.wifi_missing:
        click.echo(
            "note: no Wi-Fi yet: wifi.ssid is empty, so the sensor will refuse to start; give "
            "--wifi-ssid and --wifi-password-file, or edit the file before flashing",
            err=True,
        )
    if result.hardware_missing:
        click.echo(
            "note: no --hardware: the file has no channels; install it as "
            "firmware/config.local.json, over the wiring in firmware/config.json "
            "(docs/security.md, 'Provisioning a sensor')",
            err=True,
        )
    if any(p.name in ("passwd", "acl") for p in result.changed):
        click.echo(_RELOAD)


@click.command(cls=OnceCommand)
@click.option("--sensor", "sensor_id", required=True, help="The sensor to lock out.")
def revoke(config_path: Path, sensor_id: str) -> None:
    """Remove a sensor's broker user (a lost or retired sensor): it can no longer connect."""
    _report(revoke_sensor(load_config(config_path), sensor_id))
    click.echo(_RELOAD)


def _wifi_password(path: Path | None, env: str | None) -> Secret | None:
    if path and env:
        raise ProvisionError("--wifi-password-file or --wifi-password-env, not both")
    if path:
        return read_secret_file(path, f"--wifi-password-file {path}")
    if env:
        return read_secret_env(env, f"--wifi-password-env {env}")
    return None


@click.group()
def provision() -> None:
    """Broker users, ACL, TLS and sensor configs: who may publish what (docs/security.md)."""


for _command in (broker, sensor, revoke):
    provision.add_command(config_option(_command))
