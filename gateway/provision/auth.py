"""The broker's users: the gateway's credentials and the password file + ACL from the state."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from gateway.config import ShopConfig
from gateway.errors import ProvisionError
from gateway.provision.acl import SensorGrant, render_acl
from gateway.provision.files import PRIVATE, private_dir, shop_owner, write_file
from gateway.provision.passwd import hash_password, password_matches, render_passwd
from gateway.provision.state import GatewayRecord, Layout, State
from gateway.secrets import Secret, read_secret, resolve_path

# A broker user name lands in the password file (`user:hash`) and the ACL (`user NAME`):
# no colon, no space, no line break. Sensor ids already follow this rule.
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def new_password() -> Secret:
    """A random password: 192 bits, URL-safe characters (fits JSON, TOML and a shell)."""
    return Secret(secrets.token_urlsafe(24))


def gateway_credentials(cfg: ShopConfig) -> tuple[str, Secret]:
    """The gateway's broker user and password from [mqtt]; a missing password file is created.

    The password is kept where [mqtt] says the service reads it (secret_file or
    secret_env), never in the provisioning state: one copy, one place to rotate it.
    """
    mqtt = cfg.mqtt
    if mqtt is None or not mqtt.username:
        raise ProvisionError(
            f"{cfg.source}: [mqtt] needs username and secret_file (or secret_env): the broker "
            "shopwatt provisions refuses anonymous clients, the gateway included; e.g. "
            'username = "shopwatt-gateway" and secret_file = "mqtt.password"'
        )
    if not _USER.fullmatch(mqtt.username):
        raise ProvisionError(
            f"{cfg.source}: mqtt.username = {mqtt.username!r}: a broker user name is 1-64 of "
            "A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    if mqtt.secret_file:
        path = resolve_path(mqtt.secret_file, cfg.source.parent)
        if not path.parent.is_dir():
            raise ProvisionError(
                f"mqtt.secret_file = {mqtt.secret_file!r}: the folder {path.parent} does not exist"
            )
        if not path.exists():
            password = (new_password().reveal() + "\n").encode()
            write_file(path, password, PRIVATE, shop_owner(cfg.source), cfg.own_files)
    secret = read_secret(mqtt, cfg.source.parent, "mqtt")
    assert secret is not None  # the config requires a secret source with a username
    return mqtt.username, secret


def sync_auth(cfg: ShopConfig, layout: Layout, state: State, owner: int | None) -> list[Path]:
    """Update the gateway's record and rewrite the password file and ACL; returns changed files."""
    user, password = gateway_credentials(cfg)
    if user in state.sensors:
        raise ProvisionError(
            f"mqtt.username = {user!r} is also a sensor's id: the broker cannot tell them apart; "
            "rename one"
        )
    gw = state.gateway
    if gw is None or gw.user != user or not password_matches(password, gw.hash):
        state.gateway = GatewayRecord(user=user, hash=hash_password(password))
    assert state.gateway is not None
    hashes = {user: state.gateway.hash} | {s: r.hash for s, r in state.sensors.items()}
    grants = [SensorGrant(s, r.machine, s, r.job_events) for s, r in state.sensors.items()]
    private_dir(layout.broker, owner=owner)
    changed = []
    if write_file(layout.passwd, render_passwd(hashes), PRIVATE, owner):
        changed.append(layout.passwd)
    if write_file(layout.acl, render_acl(cfg.site.id, user, grants), PRIVATE, owner):
        changed.append(layout.acl)
    return changed
