"""Writing provisioning files: atomic, private by default, handed to the broker's user."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable
from pathlib import Path

from gateway.errors import ProvisionError
from gateway.outfile import output_file

PRIVATE = 0o600  # passwords, keys, the state, configs that hold credentials
PUBLIC = 0o644  # certificates: anyone may read them, a client needs the CA's


def private_dir(path: Path, mode: int = 0o700, owner: int | None = None) -> Path:
    """Create `path` (and parents) if needed, `mode` and (as root) `owner`'s; returns it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            os.chown(path, owner, -1)
    except OSError as err:
        raise ProvisionError(f"{path}: cannot create the folder: {err.strerror}") from None
    return path


def write_file(
    path: Path,
    data: bytes,
    mode: int = PRIVATE,
    owner: int | None = None,
    protected: Iterable[Path] = (),
) -> bool:
    """Replace `path` atomically with `data` at `mode`; False (untouched) when unchanged.

    A reader (the broker on SIGHUP, a sensor flashing tool) sees the old file or the new
    one, never half of one (gateway/outfile.py). These files are provisioning's own, so
    an existing one is replaced; a path shop.toml names passes its `protected` files.
    """
    try:
        if path.read_bytes() == data and _has_mode_and_owner(path, mode, owner):
            return False
    except OSError:
        pass  # missing or unreadable: write it
    with output_file(
        path, protected=protected, force=True, mode=mode, owner=owner, what="writing"
    ) as fh:
        fh.write(data)
    return True


def _has_mode_and_owner(path: Path, mode: int, owner: int | None) -> bool:
    info = path.stat()
    return info.st_mode & 0o7777 == mode and owner in (None, info.st_uid)


def broker_owner(user: str) -> int | None:
    """The uid to give the broker's files to, or None when they stay with whoever runs this.

    mosquitto 2 reads its password file, ACL and keys after dropping to `user`, so those
    files must belong to that user. Only root can give files away; anybody else keeps
    them, and the broker must then run as that same user.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise ProvisionError(
            f"--user {user!r}: no such system user (the one mosquitto runs as, e.g. 'mosquitto')"
        ) from None


def shop_owner(config: Path) -> int | None:
    """Who gets the files the gateway itself reads: shop.toml's owner, when root runs this.

    Provisioning runs as root (to hand the broker its files) but the gateway service runs
    as the user owning its shop.toml; a password file or storage folder left to root
    would lock the service out.
    """
    return config.stat().st_uid if os.geteuid() == 0 else None


def ensure_storage(path: Path, owner: int | None) -> None:
    """Create the shop's [storage] folder if missing (others may pass through, not list).

    0711: the broker's user must reach <storage>/mosquitto inside it.
    """
    if path.is_dir():
        return
    private_dir(path, 0o711, owner)
