"""What provisioning remembers, in `<storage>/provision/state.json` (0600, folder 0700).

The broker's password file and ACL are regenerated from this state every time, so they
never drift from it. It holds the sensors' passwords in clear (their config.json needs
them again when it is regenerated without `--rotate`): back it up like a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import Ident, ShopConfig
from gateway.errors import ProvisionError
from gateway.provision.files import PRIVATE, ensure_storage, private_dir, shop_owner, write_file

STATE_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SensorRecord(_Record):
    """One provisioned sensor: its credentials and the options its config.json was made with."""

    machine: Ident
    password: str = Field(repr=False)
    hash: str = Field(repr=False)
    job_events: bool = False
    broker_host: str
    broker_port: int = Field(ge=1, le=65535)
    wifi_ssid: str
    wifi_password: str = Field(repr=False)
    hardware: dict[str, Any]
    created: str  # UTC, ISO 8601
    rotated: str | None = None


class GatewayRecord(_Record):
    """The gateway's broker user (its password lives where [mqtt] says)."""

    user: str
    hash: str = Field(repr=False)


class State(_Record):
    """The whole state file."""

    version: int = STATE_VERSION
    broker_user: str | None = None  # the system user mosquitto runs as (owns its files)
    gateway: GatewayRecord | None = None
    sensors: dict[str, SensorRecord] = {}


@dataclass(frozen=True)
class Layout:
    """Where provisioning keeps its files for one shop."""

    root: Path  # <storage>/provision: only the owner may enter (0700)
    broker: Path  # <storage>/mosquitto: what the broker reads (given to its user)

    @classmethod
    def of(cls, cfg: ShopConfig) -> Layout:
        """The layout under the shop's [storage] path."""
        return cls(cfg.storage_dir / "provision", cfg.storage_dir / "mosquitto")

    @classmethod
    def prepare(cls, cfg: ShopConfig) -> Layout:
        """The layout, with the storage folder and the 0700 provisioning folder created."""
        ensure_storage(cfg.storage_dir, shop_owner(cfg.source))
        layout = cls.of(cfg)
        private_dir(layout.root)
        return layout

    @property
    def state(self) -> Path:
        """The state file."""
        return self.root / "state.json"

    @property
    def ca_key(self) -> Path:
        """The local CA's private key: never in the broker's folder."""
        return self.root / "ca.key"

    def sensor_config(self, sensor: str) -> Path:
        """A sensor's generated firmware config.json."""
        return self.root / "sensors" / sensor / "config.json"

    @property
    def passwd(self) -> Path:
        """mosquitto password_file."""
        return self.broker / "passwd"

    @property
    def acl(self) -> Path:
        """mosquitto acl_file."""
        return self.broker / "acl"

    @property
    def conf(self) -> Path:
        """mosquitto.conf."""
        return self.broker / "mosquitto.conf"

    @property
    def ca_cert(self) -> Path:
        """The local CA's certificate: what clients trust (public)."""
        return self.broker / "ca.crt"

    @property
    def server_cert(self) -> Path:
        """The broker's TLS certificate."""
        return self.broker / "server.crt"

    @property
    def server_key(self) -> Path:
        """The broker's TLS private key."""
        return self.broker / "server.key"


def load_state(layout: Layout) -> State:
    """The saved state, or an empty one on first use; a damaged file is a ProvisionError."""
    path = layout.state
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    except (OSError, UnicodeDecodeError) as err:
        raise ProvisionError(f"{path}: cannot read the provisioning state: {err}") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ProvisionError(f"{path}: not valid JSON ({err}); restore it from a backup") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ProvisionError(
            f"{path}: not a version {STATE_VERSION} provisioning state; restore it from a backup"
        )
    try:
        return State.model_validate(data)
    except ValidationError as err:
        # Only where and what, never the value: the values here are passwords.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_input=False)
        )
        raise ProvisionError(f"{path}: damaged provisioning state: {problems}") from None


def save_state(layout: Layout, state: State) -> bool:
    """Write the state atomically (0600); False when it did not change."""
    private_dir(layout.root)
    text = json.dumps(state.model_dump(), indent=2, sort_keys=True) + "\n"
    return write_file(layout.state, text.encode(), PRIVATE)
