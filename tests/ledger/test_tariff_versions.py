"""Tariff versions: a new version reprices only from its valid_from; closed months move only
by adjustments; status and the audit trail say which version priced what."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from gateway.config import load_config
from gateway.ledger.fingerprint import fingerprint
from tests.ledger.shop import (
    dump,
    export_rows,
    ledger_path,
    ok,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

MILL = series(
    "mill",
    "2025-11-29 00:00",
    "2025-12-02 23:59",
    [
        ("2025-11-29 10:00", "2025-11-29 12:00", 3000.0),
        ("2025-11-30 14:00", "2025-11-30 15:00", 2500.0),
        ("2025-12-01 09:00", "2025-12-01 10:00", 2000.0),
        ("2025-12-02 09:00", "2025-12-02 10:00", 2000.0),
    ],
)


def _version(valid_from: str, rate: float = 0.30, vid: str = "tou-2") -> str:
    return f'\n[[tariff.version]]\nid = "{vid}"\nvalid_from = {valid_from}\nrate = {rate}\n'


def _setup(tmp_path: Path) -> Path:
    config = write_shop(tmp_path)
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "r.csv", MILL.lines()))
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    return config


def _rows_before(config: Path, day: str) -> list[tuple[object, ...]]:
    return [r for r in dump(config, "rows") if str(r[7]) < day]


def test_a_ledger_of_a_single_tariff_config_stays_current(tmp_path: Path) -> None:
    # The fingerprint main wrote before versions existed (tests/ledger/shop.py's config):
    # an existing ledger must not ask for a recompute after the upgrade.
    cfg = load_config(write_shop(tmp_path))
    assert fingerprint(cfg, "mill") == (
        "3273c407618298011496d86785ef93db2f857e9f47fd6279c671805ce8af66df"
    )


def test_a_new_version_reprices_only_from_its_day(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    november = export_rows(config, "2025-11-01", "2025-12-01")
    before = export_rows(config, "2025-12-01", "2026-01-01")
    earlier = _rows_before(config, "2025-12-02")
    config.write_text(config.read_text() + _version("2025-12-02"))

    refused = shopwatt("export", "--config", config, "--from", "2025-12-01", "--to", "2026-01-01")
    assert refused.exit_code == 2
    assert "mill (from 2025-12-02)" in refused.stderr
    status = ok("status", "--config", config)
    assert "CHANGED from 2025-12-02: run recompute" in status

    recomputed = ok("recompute", "--config", config)
    assert "mill: 2025-12-02" in recomputed  # not a day earlier
    assert _rows_before(config, "2025-12-02") == earlier
    assert dump(config, "adjustments") == []
    assert export_rows(config, "2025-11-01", "2025-12-01") == november
    after = export_rows(config, "2025-12-01", "2026-01-01")
    for old, new in zip(before, after, strict=True):
        if new["start"] < "2025-12-02":
            assert new == old
        else:  # weekday 09:00-10:00 and overhead: all standard, 0.20 -> 0.30
            assert new["energy_kwh"] == old["energy_kwh"]
            cost = Decimal(new["kwh_standard"]) * Decimal("0.30") + Decimal(new["kwh_peak"]) * (
                Decimal("0.40")
            )
            assert Decimal(new["energy_cost"]) == cost.quantize(Decimal("0.01"))


def test_a_version_back_dated_into_a_closed_month_makes_adjustments(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    november = export_rows(config, "2025-11-01", "2025-12-01")
    config.write_text(config.read_text() + _version("2025-11-30"))
    ok("recompute", "--config", config)

    assert export_rows(config, "2025-11-01", "2025-12-01") == november  # closed: frozen
    december = export_rows(config, "2025-12-01", "2026-01-01")
    adjustments = [r for r in december if r["kind"] == "adjustment"]
    # Only Nov 30 moves (its job and its overhead): Nov 29 keeps the first version's price.
    assert {r["start"][:10] for r in adjustments} == {"2025-11-30"}
    assert {r["job_id"] for r in adjustments} == {"mill-20251130-001", ""}
    assert all(Decimal(r["energy_kwh"]) == 0 for r in adjustments)
    assert all(Decimal(r["energy_cost"]) > 0 for r in adjustments)


def test_status_and_audit_say_which_version_priced_what(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    config.write_text(config.read_text() + _version("2025-12-01T12:00:00"))
    ok("recompute", "--config", config)

    status = ok("status", "--config", config)
    assert "tou: valid from the beginning; priced 2025-11-29 .. 2025-12-01" in status
    assert "tou-2: valid from 2025-12-01T12:00:00; priced 2025-12-01 .. 2025-12-02" in status
    conn = sqlite3.connect(ledger_path(config))
    try:
        (detail,) = conn.execute(
            "SELECT detail FROM audit WHERE action = 'recompute' ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    entry = json.loads(detail)
    assert entry["from"] == {"mill": "2025-12-01"}
    assert entry["priced_by"] == {
        "tou": ["2025-12-01", "2025-12-01"],
        "tou-2": ["2025-12-01", entry["recomputed"]["mill"][1]],
    }
