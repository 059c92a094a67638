"""Closing months: frozen rows never change; later changes arrive as adjustment rows, once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.errors import LedgerError
from gateway.ledger import Ledger
from tests.ledger.shop import dump, export_rows, ok, series, shopwatt, write_readings, write_shop

MILL = series(
    "mill",
    "2025-11-29 00:00",
    "2025-12-01 23:59",
    [
        ("2025-11-29 10:00", "2025-11-29 12:00", 3000.0),
        ("2025-11-30 14:00", "2025-11-30 15:00", 2500.0),  # arrives late
        ("2025-12-01 09:00", "2025-12-01 10:00", 2000.0),
    ],
)
LATE = ("2025-11-30 12:00", "2025-12-01 00:00")


def _kwh(rows: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(r["energy_kwh"]) for r in rows), Decimal(0))


def _setup(tmp_path: Path) -> Path:
    config = write_shop(tmp_path)
    early = MILL.lines(hi=LATE[0]) + MILL.lines(lo=LATE[1])
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "early.csv", early))
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    return config


def _replay_late(config: Path) -> str:
    late = write_readings(config.parent / "late.csv", MILL.lines(lo=LATE[0], hi=LATE[1]))
    return ok("replay", "--config", config, "--input", late)


def test_late_data_for_a_closed_month_becomes_adjustments_in_the_next(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    november = export_rows(config, "2025-11-01", "2025-12-01")
    frozen = dump(config, "frozen")
    assert {r["kind"] for r in november} == {"job", "overhead"}

    assert "adjustment rows pending for closed months" in _replay_late(config)

    assert dump(config, "frozen") == frozen
    assert export_rows(config, "2025-11-01", "2025-12-01") == november
    december = export_rows(config, "2025-12-01", "2026-01-01")
    adjustments = [r for r in december if r["kind"] == "adjustment"]
    # The late job appears whole; the overhead of Nov 30 is corrected by the difference.
    late_job = next(r for r in adjustments if r["job_id"] == "mill-20251130-001")
    assert late_job["start"] == "2025-11-30T14:00:00+01:00"
    assert Decimal(late_job["energy_kwh"]) > Decimal("2.4")
    # Every metered kWh is in exactly one month's export: the frozen one or an adjustment.
    metered = Decimal(str((MILL.wh[-1] - MILL.wh[0]) / 1000))
    rows = len(november) + len(december)
    assert abs(_kwh(november) + _kwh(december) - metered) <= Decimal("0.0005") * 2 * rows


def test_recomputing_and_replaying_again_never_doubles_an_adjustment(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    _replay_late(config)
    pending = dump(config, "adjustments")
    assert pending
    ok("recompute", "--config", config, "--all")
    ok("recompute", "--config", config, "--all")
    _replay_late(config)
    assert dump(config, "adjustments") == pending


def test_closing_the_next_month_freezes_its_adjustments_for_good(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    _replay_late(config)
    december = export_rows(config, "2025-12-01", "2026-01-01")
    ok("close", "--config", config, "--month", "2025-12", "--yes")
    assert dump(config, "adjustments") == []
    ok("recompute", "--config", config, "--all")
    assert dump(config, "adjustments") == []
    assert export_rows(config, "2025-12-01", "2026-01-01") == december


def test_a_tariff_change_needs_recompute_and_corrects_closed_months(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    ok("close", "--config", config, "--month", "2025-12", "--yes")
    before = export_rows(config, "2025-11-01", "2026-01-01")
    write_shop(tmp_path, rate=0.30)

    refused = shopwatt("export", "--config", config, "--from", "2025-11-01", "--to", "2026-01-01")
    assert refused.exit_code == 2
    assert "run `shopwatt recompute` first" in refused.stderr

    ok("recompute", "--config", config)
    assert export_rows(config, "2025-11-01", "2026-01-01") == before  # closed: unchanged
    january = export_rows(config, "2026-01-01", "2026-02-01")
    assert {r["kind"] for r in january} == {"adjustment"}
    assert _kwh(january) == 0  # same energy, other price
    standard = sum(Decimal(r["kwh_standard"]) for r in before)
    extra = sum(Decimal(r["energy_cost"]) for r in january)
    assert abs(extra - standard * Decimal("0.10")) <= Decimal("0.005") * len(before)


def test_a_month_closes_once_and_the_audit_trail_says_who_did_what(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    again = shopwatt("close", "--config", config, "--month", "2025-11", "--yes")
    assert again.exit_code == 2
    assert "2025-11 is already closed" in again.stderr
    bad = shopwatt("close", "--config", config, "--month", "2025-13", "--yes")
    assert "--month = '2025-13': expected a month as YYYY-MM" in bad.stderr
    last = shopwatt("close", "--config", config, "--month", "9999-12")  # no month after it
    assert last.exit_code == 2 and "--month = '9999-12': the month has not ended" in last.stderr
    status = ok("status", "--config", config)
    assert "closed months: 2025-11 (" in status
    trail = status.split("recent changes:")[1]
    assert " close 2025-11: " in trail
    assert " replay " in trail and "early.csv (sha256 " in trail


def test_months_close_in_order_so_corrections_never_land_in_a_closed_month(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path)
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "r.csv", MILL.lines()))
    before = dump(config, "frozen")
    refused = shopwatt("close", "--config", config, "--month", "2025-12", "--yes")
    assert refused.exit_code == 2
    assert "2025-11 is still open: close months in order (2025-11 before 2025-12)" in (
        refused.stderr
    )
    assert dump(config, "frozen") == before
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    ok("close", "--config", config, "--month", "2025-12", "--yes")


def test_a_month_closes_only_after_it_has_ended_in_the_sites_time_zone(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "r.csv", MILL.lines()))
    ledger = Ledger(load_config(config), clock=lambda: "2025-11-30T22:59:59+00:00")
    with pytest.raises(
        LedgerError, match=r"'2025-11': the month has not ended yet in Europe/Berlin"
    ):
        ledger.close("2025-11")  # 23:59:59 on 30 November in Berlin
    assert dump(config, "frozen") == []
    at_midnight = Ledger(load_config(config), clock=lambda: "2025-11-30T23:00:00+00:00")
    assert at_midnight.close("2025-11").rows > 0
    future = shopwatt("close", "--config", config, "--month", "2099-01", "--yes")
    assert future.exit_code == 2
    assert "'2099-01': the month has not ended yet" in future.stderr
