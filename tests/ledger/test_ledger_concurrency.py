"""Two processes on one ledger: a reader never removes a ledger another process creates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import gateway.ledger.ledger as ledger_module
from gateway.config import load_config
from gateway.errors import LedgerError
from gateway.ledger import Ledger
from tests.ledger.shop import ledger_path, series, shopwatt, write_readings, write_shop


def test_a_reader_that_finds_no_ledger_leaves_the_one_being_created_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_shop(tmp_path)
    mill = series("mill", "2026-11-03 08:00", "2026-11-03 12:00", [])
    readings = write_readings(tmp_path / "r.csv", mill.lines())

    def service_creates_it_meanwhile(path: Path, **_: bool) -> sqlite3.Connection:
        # The race: the reader looked (no ledger yet), then another process created it,
        # then the reader's own open failed.
        monkeypatch.undo()
        assert shopwatt("replay", "--config", config, "--input", readings).exit_code == 0
        raise LedgerError(f"{path}: no ledger yet")

    monkeypatch.setattr(ledger_module, "connect", service_creates_it_meanwhile)
    with pytest.raises(LedgerError):
        Ledger(load_config(config)).status()
    assert ledger_path(config).exists()
    assert Ledger(load_config(config)).status().machines
