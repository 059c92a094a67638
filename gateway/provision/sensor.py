"""`shopwatt provision sensor` / `revoke`: a sensor's broker user and its firmware config.json."""

from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import ShopConfig
from gateway.errors import ProvisionError
from gateway.ledger.machines import check_machine
from gateway.provision.auth import new_password, sync_auth
from gateway.provision.files import PRIVATE, broker_owner, private_dir, write_file
from gateway.provision.passwd import hash_password
from gateway.provision.state import Layout, SensorRecord, State, load_state, save_state
from gateway.provision.tls import is_host_name
from gateway.secrets import Secret

# Keys of the firmware's config.json that provisioning owns; a --hardware file describes
# the wiring (channels, voltage, meter, window, ...) and must leave these alone.
OWNED_KEYS = frozenset({"site", "machine", "sensor", "wifi", "mqtt"})
# A first provisioning without Wi-Fi options leaves wifi.ssid empty: the sensor then
# refuses to start and blinks its config error, instead of searching for a made-up network.
_FIRST_TIME: dict[str, Any] = {
    "job_events": False,
    "wifi_ssid": "",
    "wifi_password": "",
    "hardware": {},
    "rotated": None,
}


@dataclass(frozen=True)
class SensorOptions:
    """What `provision sensor` was asked for; None = keep what was used last time."""

    machine: str
    sensor: str
    rotate: bool = False
    broker_host: str | None = None
    broker_port: int | None = None
    wifi_ssid: str | None = None
    wifi_password: Secret | None = None
    hardware: dict[str, Any] | None = None
    job_events: bool | None = None


@dataclass
class SensorResult:
    """What `provision sensor` did (never the password itself)."""

    config: Path
    action: str  # "created", "rotated" or "kept"
    changed: list[Path] = field(default_factory=list)
    wifi_missing: bool = False
    hardware_missing: bool = False


def load_hardware(path: Path) -> dict[str, Any]:
    """A --hardware JSON file: the sensor's wiring keys of the firmware's config.json."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProvisionError(f"--hardware {path}: cannot read: {err.strerror}") from None
    except ValueError as err:
        raise ProvisionError(f"--hardware {path}: not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ProvisionError(f"--hardware {path}: expected a JSON object")
    owned = sorted(OWNED_KEYS & doc.keys())
    if owned:
        raise ProvisionError(
            f"--hardware {path}: {', '.join(owned)}: set by provisioning from shop.toml and "
            "the options; keep only the wiring (channels, voltage, meter, window_ms, ...)"
        )
    return doc


def provision_sensor(cfg: ShopConfig, opts: SensorOptions, now: datetime) -> SensorResult:
    """Create (or update) a sensor's credentials, its config.json, the password file and ACL."""
    _check_declared(cfg, opts.machine, opts.sensor)
    layout = Layout.prepare(cfg)
    state = load_state(layout)
    old = state.sensors.get(opts.sensor)
    stamp = now.astimezone(UTC).isoformat(timespec="seconds")
    if old is None:
        action, fresh = "created", {"created": stamp}
    elif opts.rotate:
        action, fresh = "rotated", {"rotated": stamp}
    else:
        action, fresh = "kept", {}
    if action != "kept":
        password = new_password()
        fresh |= {"password": password.reveal(), "hash": hash_password(password)}
    previous = old.model_dump() if old else _FIRST_TIME | {"broker_port": _mqtt_port(cfg)}
    given = {
        "job_events": opts.job_events,
        "broker_port": opts.broker_port,
        "wifi_ssid": opts.wifi_ssid,
        "wifi_password": opts.wifi_password.reveal() if opts.wifi_password else None,
        "hardware": opts.hardware,
    }
    record = SensorRecord.model_validate(
        previous
        | {k: v for k, v in given.items() if v is not None}
        | {"machine": opts.machine, "broker_host": _broker_host(cfg, opts, old)}
        | fresh
    )
    state.sensors[opts.sensor] = record
    # The broker's files first: a refused gateway (no [mqtt] credentials) leaves no
    # config.json whose password no broker knows.
    synced = _sync(cfg, layout, state)
    config = layout.sensor_config(opts.sensor)
    private_dir(config.parent.parent)  # sensors/: as private as the folder around it
    private_dir(config.parent)
    result = SensorResult(
        config, action, wifi_missing=not record.wifi_ssid, hardware_missing=not record.hardware
    )
    if write_file(config, render_sensor_config(cfg, opts.sensor, record), PRIVATE):
        result.changed.append(config)
    result.changed += synced
    return result


def revoke_sensor(cfg: ShopConfig, sensor: str) -> list[Path]:
    """Remove a sensor's broker user and its config.json; returns the files changed."""
    layout = Layout.prepare(cfg)
    state = load_state(layout)
    if sensor not in state.sensors:
        known = ", ".join(sorted(state.sensors)) or "none"
        raise ProvisionError(f"--sensor {sensor!r}: not provisioned (provisioned: {known})")
    del state.sensors[sensor]
    shutil.rmtree(layout.sensor_config(sensor).parent, ignore_errors=True)
    return _sync(cfg, layout, state)


def render_sensor_config(cfg: ShopConfig, sensor: str, record: SensorRecord) -> bytes:
    """The firmware config.json: identity and topics, Wi-Fi, broker, credentials, wiring."""
    doc = {
        "site": cfg.site.id,  # with machine and sensor: the sensor's topics
        "machine": record.machine,
        "sensor": sensor,
        "wifi": {"ssid": record.wifi_ssid, "password": record.wifi_password},
        "mqtt": {
            "host": record.broker_host,
            "port": record.broker_port,
            "user": sensor,
            "password": record.password,
        },
        **record.hardware,
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _sync(cfg: ShopConfig, layout: Layout, state: State) -> list[Path]:
    # The broker's files go to its user once `provision broker` has named it.
    owner = None if state.broker_user is None else broker_owner(state.broker_user)
    changed = sync_auth(cfg, layout, state, owner)
    save_state(layout, state)
    return changed


def _check_declared(cfg: ShopConfig, machine: str, sensor: str) -> None:
    check_machine(cfg, machine, ProvisionError)
    for m in cfg.machine:
        if any(s.id == sensor for s in m.sensor):
            if m.id != machine:
                raise ProvisionError(
                    f"--sensor {sensor!r}: {cfg.source} has it on machine {m.id!r}, not {machine!r}"
                )
            return
    raise ProvisionError(
        f"--sensor {sensor!r}: machine {machine!r} in {cfg.source} has no [[machine.sensor]] "
        f'with id = "{sensor}": add it first (the gateway ignores sensors it does not know)'
    )


def _broker_host(cfg: ShopConfig, opts: SensorOptions, old: SensorRecord | None) -> str:
    host = opts.broker_host or (old.broker_host if old else None)
    if host is None:
        host = cfg.mqtt.host if cfg.mqtt else ""
        if not host or host == "localhost" or _is_loopback(host):
            raise ProvisionError(
                f"--broker-host: needed, because mqtt.host in {cfg.source} is {host!r}, which "
                "a sensor cannot reach: give the gateway's address on the workshop network, "
                "e.g. --broker-host 192.168.1.10"
            )
    if not is_host_name(host):  # an IPv4 address passes too
        raise ProvisionError(f"--broker-host {host!r}: expected an IP address (or a host name)")
    return host


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mqtt_port(cfg: ShopConfig) -> int:
    return cfg.mqtt.port if cfg.mqtt else 1883
