"""Every file shopwatt writes: atomically, never over the shop's own data, replaced only on request.

One rule for export, demo and provision: the ledger, the outbox and shop.toml are refused
by identity (whatever path, link or hard link names them); an existing file is replaced
only with `force`; the data goes to a temporary file in the same folder, is flushed to
disk and renamed into place, so a failed or interrupted write leaves no half file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from gateway.errors import OutputError


def _same(path: Path, other: Path) -> bool:
    """Both name one file: equal once resolved, or one inode (a hard link, a bind mount)."""
    if path.resolve() == other.resolve():
        return True
    try:
        return path.samefile(other)
    except OSError:  # either one missing: only the resolved names could match
        return False


def check_target(path: Path, protected: Iterable[Path], force: bool, what: str) -> None:
    """Refuse the shop's own files, folders, missing folders and (without force) existing files."""
    for own in protected:
        if _same(path, own):
            raise OutputError(f"{what} {path}: that is {own}, which shopwatt never writes over")
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise OutputError(f"{what} {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise OutputError(f"{what} {path}: the file exists; use --force to replace it")


@contextmanager
def output_file(
    path: Path,
    *,
    protected: Iterable[Path] = (),
    force: bool = False,
    mode: int = 0o644,
    owner: int | None = None,
    what: str = "--output",
) -> Iterator[BinaryIO]:
    """Yield a temporary file that becomes `path` when the block ends without an error.

    `what` names the option or key the path came from, for the error message. The mode
    (and, as root, the owner) is set before the first byte: a secret is never readable
    by others, not even for an instant.
    """
    protected = list(protected)
    check_target(path, protected, force, what)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise OutputError(f"{what} {path}: cannot write: {err.strerror}") from None
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, owner, -1)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, path, force)
    except OSError as err:
        raise OutputError(f"{what} {path}: cannot write: {err.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)


def _place(tmp: Path, path: Path, force: bool) -> None:
    """Rename the finished file into place; without force, never over a file that appeared."""
    if force:
        os.replace(tmp, path)
        return
    try:
        # link() fails if `path` exists, atomically: another process cannot slip a file
        # in between the check above and this step and have it silently replaced.
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"{path}: the file exists; use --force to replace it") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # A file system without hard links (FAT on an SD card): check, then rename.
        if path.exists():
            raise OutputError(f"{path}: the file exists; use --force to replace it") from None
        os.replace(tmp, path)


def _sync_dir(folder: Path) -> None:
    # The rename is durable only once the folder itself is on disk (power cut on a Pi).
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
