"""Secrets (InfluxDB token, MQTT passwords): read from a 0600 file or a named env variable.

The one place shopwatt reads a secret. A secret never appears in shop.toml, a log line, an
exception text or a repr: errors name the config key, the file and its mode, never the
value. A secret file that its group or other users can read (or write) is refused: on a
shared workshop PC or a Pi with a guest account, that is how tokens leak.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

from gateway.errors import ConfigError

# A token or password is short; a big file is the wrong file (a certificate, a log...).
MAX_SECRET_BYTES = 4096


class Secret:
    """A token or password that never shows up in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one call that sends it (an auth header, CONNECT)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


class SecretSource(Protocol):
    """A config section that names where its secret is ([influxdb], [mqtt])."""

    @property
    def secret_file(self) -> str: ...

    @property
    def secret_env(self) -> str: ...


def resolve_path(name: str, config_dir: Path) -> Path:
    """A secret_file value as a path: `~` expanded, relative to the config file's folder."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else config_dir / path


def read_secret(cfg: SecretSource, config_dir: Path, section: str) -> Secret | None:
    """The secret named by `[section]` secret_env or secret_file; None when neither is set."""
    if cfg.secret_env:
        return read_secret_env(cfg.secret_env, f"{section}.secret_env = {cfg.secret_env!r}")
    if cfg.secret_file:
        key = f"{section}.secret_file = {cfg.secret_file!r}"
        return read_secret_file(resolve_path(cfg.secret_file, config_dir), key)
    return None


def read_secret_env(name: str, key: str) -> Secret:
    """A secret from the environment variable `name`; errors start with `key`."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{key}: that environment variable is not set or empty")
    return Secret(value)


def read_secret_file(path: Path, key: str) -> Secret:
    """A secret from a file only its owner can read; errors start with `key` (what to fix)."""
    fd = _open_private(path, key)
    try:
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(
            f"{key}: {path} is longer than {MAX_SECRET_BYTES} bytes: not a token or password"
        )
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{key}: {path} is empty")
    return Secret(value)


def require_private_file(path: Path, key: str) -> None:
    """Refuse a file (a TLS private key) that others could read; errors start with `key`."""
    os.close(_open_private(path, key))


def _open_private(path: Path, key: str) -> int:
    """Open `path` for reading and check, on the opened file, that only its owner can."""
    try:
        # O_NOFOLLOW is not used: a symlink into /run/secrets is normal (Docker, systemd).
        # The checks run on the opened file itself, so a swap after them cannot slip
        # another file in.
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path}: {err.strerror}") from None
    try:
        _check_private(os.fstat(fd), path, key)
    except ConfigError:
        os.close(fd)
        raise
    return fd


def _check_private(info: os.stat_result, path: Path, key: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{key}: {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{key}: {path} has mode {mode:04o}: other users could read or change the "
            f"secret; make it private with `chmod 600 {path}`"
        )
