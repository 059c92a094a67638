"""An accountant's read-only copy of the ledger: export and status read it, and never write.

Root ignores file modes, so the copy is made read-only the way a real medium is: a
read-only bind mount (docs/toolchain-notes); the test is skipped where mounting is denied.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.ledger.schema import SCHEMA_VERSION
from tests.ledger.shop import (
    before_day_blocks,
    drop_billing_step,
    ledger_path,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

RANGE = ("--from", "2026-11-03", "--to", "2026-11-05")


def _mount_readonly(source: Path, target: Path) -> None:
    for args in (["--bind", source, target], ["-o", "remount,bind,ro", target]):
        done = subprocess.run(["mount", *map(str, args)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", str(target)], capture_output=True, check=False)
            pytest.skip(f"cannot mount read-only here: {done.stderr.decode().strip()}")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A replayed shop whose ledger has been closed cleanly (no -wal left), as a copy is."""
    config = write_shop(tmp_path / "shop")
    mill = series("mill", "2026-11-03 06:00", "2026-11-04 20:00", [])
    readings = write_readings(tmp_path / "shop" / "r.csv", mill.lines())
    assert shopwatt("replay", "--config", config, "--input", readings).exit_code == 0
    return config


@pytest.fixture
def readonly_folder(shop: Path, tmp_path: Path) -> Iterator[Path]:
    """The whole shop folder (config and ledger) on a read-only mount."""
    target = tmp_path / "copy"
    target.mkdir()
    _mount_readonly(shop.parent, target)
    try:
        yield target / "shop.toml"
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)  # even if busy


@pytest.fixture
def readonly_file(shop: Path, tmp_path: Path) -> Iterator[Path]:
    """Only the ledger file read-only, in a folder that is writable."""
    folder = tmp_path / "copy"
    (folder / "data").mkdir(parents=True)
    shutil.copy(shop, folder / "shop.toml")
    target = ledger_path(folder / "shop.toml")
    target.touch()
    _mount_readonly(ledger_path(shop), target)
    try:
        yield folder / "shop.toml"
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)  # even if busy


def _digest(config: Path) -> str:
    return hashlib.sha256(ledger_path(config).read_bytes()).hexdigest()


@pytest.mark.parametrize("where", ["readonly_folder", "readonly_file"])
def test_export_and_status_read_a_readonly_ledger(
    request: pytest.FixtureRequest, shop: Path, where: str
) -> None:
    config: Path = request.getfixturevalue(where)
    before = _digest(config)
    exported = shopwatt("export", "--config", config, *RANGE)
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == shopwatt("export", "--config", shop, *RANGE).stdout
    status = shopwatt("status", "--config", config)
    assert status.exit_code == 0, status.output
    assert "mill" in status.stdout
    assert _digest(config) == before


@pytest.mark.parametrize("where", ["readonly_folder", "readonly_file"])
def test_a_command_that_writes_says_so_in_one_line(
    request: pytest.FixtureRequest, where: str
) -> None:
    config: Path = request.getfixturevalue(where)
    result = shopwatt("recompute", "--config", config, "--all")
    assert result.exit_code == 2
    assert result.stderr.startswith("shopwatt: error: ") and len(result.stderr.splitlines()) == 1


def test_a_readonly_copy_with_unmerged_changes_is_refused_not_read_stale(
    shop: Path, tmp_path: Path
) -> None:
    """Copied while a command wrote: the -wal file holds committed rows the file lacks."""
    copy = tmp_path / "wal-copy"
    with closing(sqlite3.connect(ledger_path(shop), isolation_level=None)) as conn:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("INSERT INTO audit (at, who, action, detail) VALUES ('', '', 'x', '{}')")
        shutil.copytree(shop.parent, copy)
    # Without its -shm (copied with the file and -wal, SQLite reads all three correctly).
    ledger_path(copy / "shop.toml").with_name("ledger.sqlite-shm").unlink()
    assert ledger_path(copy / "shop.toml").with_name("ledger.sqlite-wal").stat().st_size > 0
    target = tmp_path / "ro"
    target.mkdir()
    _mount_readonly(copy, target)
    try:
        result = shopwatt("status", "--config", target / "shop.toml")
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)
    assert result.exit_code == 2
    assert "ledger.sqlite-wal holds changes not yet in the file" in result.stderr


def test_export_and_status_upgrade_an_older_ledger_that_can_be_written(shop: Path) -> None:
    # The ledger of the shopwatt before price series (schema 3): what an update finds.
    with closing(sqlite3.connect(ledger_path(shop))) as conn:
        drop_billing_step(conn)  # a later step's
        conn.execute("DROP TABLE prices")
        conn.execute("PRAGMA user_version = 3")
        conn.commit()
    for command in (["export", *RANGE], ["status"]):
        result = shopwatt(*command, "--config", shop)
        assert result.exit_code == 0, result.output
        assert "mill" in result.stdout
    with closing(sqlite3.connect(ledger_path(shop))) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_readonly_ledger_of_the_version_before_day_blocks_reads_as_it_did(
    shop: Path, tmp_path: Path
) -> None:
    # Its chunks keyed by (machine, day): a reader cannot change the key, and needs not.
    exported = shopwatt("export", "--config", shop, *RANGE)
    before_day_blocks(ledger_path(shop))
    target = tmp_path / "ro"
    target.mkdir()
    _mount_readonly(shop.parent, target)
    try:
        again = shopwatt("export", "--config", target / "shop.toml", *RANGE)
        status = shopwatt("status", "--config", target / "shop.toml")
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)
    assert again.exit_code == 0, again.output
    assert again.stdout == exported.stdout
    assert status.exit_code == 0, status.output
