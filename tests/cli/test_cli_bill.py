"""`shopwatt bill`: the hand-computed case tests/cases/demand_peak through replay + bill."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from tests.ledger.shop import drop_billing_step, ok, replay_case

CASES = Path(__file__).resolve().parents[1] / "cases"
CASE = CASES / "demand_peak"
# The same machines and jobs, with a grid site meter that sets the peak elsewhere.
GRID = CASES / "grid_meter"
# The same again, with own solar production covering part of the jobs.
SOLAR = CASES / "solar"


def _amount(text: str, label: str) -> str:
    """The figure at the end of the bill line that starts with `label`."""
    line = next(x for x in text.splitlines() if x.strip().startswith(label))
    return line.split()[-1]


def _replayed(tmp_path: Path, folder: Path = CASE) -> Path:
    """The case copied to tmp_path and replayed; its shop.toml."""
    return replay_case(folder, tmp_path)


@pytest.mark.parametrize("folder", [CASE, GRID, SOLAR], ids=lambda p: p.name)
def test_the_demand_peak_is_billed_and_shared_by_the_jobs_that_made_it(
    tmp_path: Path, folder: Path
) -> None:
    config = _replayed(tmp_path, folder)
    case = config.parent
    want = json.loads((case / "expected_bill.json").read_text())

    bill = ok("bill", "--config", config, "--month", want["month"])

    assert _amount(bill, "kwh_standard") == want["kwh_standard"]
    assert _amount(bill, "energy cost") == want["energy_cost"]
    peak = next(x for x in bill.splitlines() if "peak 15-minute average" in x)
    assert f"at {want['peak_at']}" in peak and peak.endswith(f"{want['peak_kw']} kW")
    assert _amount(bill, "demand charge") == want["demand_charge"]
    for who, cents in want["shares"].items():
        assert _amount(bill, f"{who}:") == cents, who
    assert _amount(bill, "CO2") == want["co2_kg"]
    for label in ("days", "per_month", "net", "vat", "total"):
        pattern = {"days": "30 days", "per_month": "per month", "vat": "VAT"}.get(label, label)
        assert _amount(bill, pattern) == want[label], label


def _export(config: Path) -> list[dict[str, str]]:
    text = ok("export", "--config", config, "--from", "2026-11-01", "--to", "2026-12-01")
    return list(csv.DictReader(io.StringIO(text)))


def _total(lines: list[dict[str, str]], *columns: str) -> Decimal:
    return sum((Decimal(r[c]) for r in lines for c in columns), Decimal(0))


def test_the_export_carries_the_charges_and_adds_up_to_the_bill(tmp_path: Path) -> None:
    config = _replayed(tmp_path)
    case = config.parent
    want = json.loads((case / "expected_bill.json").read_text())
    lines = _export(config)
    name = {id(r): r["job_id"] or f"{r['machine']} overhead" for r in lines}
    assert {name[id(r)]: r["energy_cost"] for r in lines} == want["export_energy_cost"]
    charges = {name[id(r)]: [r["demand_cost"], r["fixed_cost"]] for r in lines}
    assert charges == want["export_charges"]
    assert {name[id(r)]: r["co2_kg"] for r in lines} == want["export_co2_kg"]

    bill = ok("bill", "--config", config, "--month", "2026-11")
    assert _total(lines, "energy_cost") == Decimal(_amount(bill, "energy cost"))
    assert _total(lines, "demand_cost") == Decimal(_amount(bill, "demand charge"))
    shares = [Decimal(m) for m in re.findall(r"kWh in the peak +(\S+)", bill)]
    assert sum(shares) == Decimal(_amount(bill, "demand charge"))
    net = _total(lines, "energy_cost", "demand_cost", "fixed_cost")
    assert net == Decimal(_amount(bill, "net"))  # to the cent

    # Closing freezes the month's charges with its rows and its bill: a higher peak that
    # arrives late is stated on the bill, not rebilled, and moves neither bill nor export.
    ok("close", "--config", config, "--month", "2026-11", "--yes")
    late = case / "late.csv"
    late.write_text(
        "time,machine,watts\n"
        + "".join(
            f"2026-11-30T10:{m:02d}:00+01:00,{machine},8000\n"
            for m in (0, 15, 30)
            for machine in ("mill", "laser")
        )
    )
    ok("replay", "--config", config, "--input", late)
    after = ok("bill", "--config", config, "--month", "2026-11")
    late_line = next(x for x in after.splitlines() if "after the close" in x)
    assert late_line.strip() == (
        "readings stored after the close make the peak 16.000 kW at 2026-11-30 10:00: not rebilled"
    )
    assert [x for x in after.splitlines() if x != late_line] == bill.splitlines()
    november = [r for r in _export(config) if r["kind"] != "adjustment"]
    assert november == lines
    # Nor does a new grid carbon intensity or demand rate (bill-only keys: no recompute).
    text = config.read_text().replace("co2_g_per_kwh = 380", "co2_g_per_kwh = 500")
    config.write_text(text.replace("demand_per_kw = 10.00", "demand_per_kw = 20.00"))
    assert [r for r in _export(config) if r["kind"] != "adjustment"] == lines
    again = ok("bill", "--config", config, "--month", "2026-11")
    assert [x for x in again.splitlines() if x != late_line] == bill.splitlines()
    assert net == Decimal(_amount(again, "net"))


def test_a_shop_without_a_co2_intensity_gets_no_co2_line(tmp_path: Path) -> None:
    config = _replayed(tmp_path)
    assert "CO2 of the export's lines (kg)" in ok("bill", "--config", config, "--month", "2026-11")
    text = config.read_text()
    config.write_text(re.sub(r"(?m)^co2_g_per_kwh = .*\n", "", text))
    ok("recompute", "--config", config)
    # Not "0.000 kg": the shop never said what its grid emits.
    bill = ok("bill", "--config", config, "--month", "2026-11")
    assert "CO2" not in bill and _amount(bill, "net") == "101.00"


def test_a_grid_meter_sets_the_peak_but_is_never_a_row(tmp_path: Path) -> None:
    config = _replayed(tmp_path, GRID)
    want = json.loads((config.parent / "expected_bill.json").read_text())
    lines = _export(config)
    assert {r["machine"] for r in lines} == {"mill", "laser"}
    name = {id(r): r["job_id"] or f"{r['machine']} overhead" for r in lines}
    assert {name[id(r)]: [r["demand_cost"], r["fixed_cost"]] for r in lines} == want[
        "export_charges"
    ]
    bill = ok("bill", "--config", config, "--month", "2026-11")
    net = _total(lines, "energy_cost", "demand_cost", "fixed_cost")
    assert net == Decimal(_amount(bill, "net"))  # to the cent
    status = ok("status", "--config", config)
    machines = [
        x.split()[0] for x in status.splitlines() if x.startswith(("mill", "laser", "grid"))
    ]
    assert machines == ["laser", "mill"]  # the site meter is no machine line


def test_own_solar_lowers_the_jobs_energy_cost_and_the_export_still_adds_up(
    tmp_path: Path,
) -> None:
    config = _replayed(tmp_path, SOLAR)
    want = json.loads((config.parent / "expected_bill.json").read_text())
    lines = _export(config)
    assert {r["machine"] for r in lines} == {"mill", "laser"}  # pv is never a row
    name = {id(r): r["job_id"] or f"{r['machine']} overhead" for r in lines}
    assert {name[id(r)]: [r["solar_kwh"], r["solar_cost"]] for r in lines} == want["export_solar"]
    bill = ok("bill", "--config", config, "--month", "2026-11")
    assert _amount(bill, "own solar used") == want["solar_kwh"]
    assert _amount(bill, "grid kWh") == want["grid_kwh"]
    assert _amount(bill, "own solar:") == want["solar_cost"]
    net = _total(lines, "energy_cost", "solar_cost", "demand_cost", "fixed_cost")
    assert net == Decimal(_amount(bill, "net")) == Decimal(want["net"])

    # Closing freezes the solar with the month: a new feed-in tariff changes neither.
    ok("close", "--config", config, "--month", "2026-11")
    config.write_text(config.read_text().replace("feed_in_per_kwh = 0.08", "feed_in_per_kwh = 0.5"))
    assert [r for r in _export(config) if r["kind"] != "adjustment"] == lines
    assert ok("bill", "--config", config, "--month", "2026-11") == bill


def test_a_ledger_from_before_the_charges_table_gets_it_at_its_next_close(
    tmp_path: Path,
) -> None:
    config = _replayed(tmp_path)
    case = config.parent
    ledger = case / "shopwatt-data" / "ledger.sqlite"
    with closing(sqlite3.connect(ledger)) as conn, conn:
        drop_billing_step(conn)  # a later step's
        conn.execute("DROP TABLE frozen_charges")  # as schema version 2 left it
        conn.execute("PRAGMA user_version = 2")
    ok("close", "--config", config, "--month", "2026-11", "--yes")  # migrates, then freezes
    lines = _export(config)
    assert _total(lines, "demand_cost") == Decimal("80.00")


def test_co2_from_an_imported_series_counts_each_quarter_hours_intensity(tmp_path: Path) -> None:
    config = _replayed(tmp_path)
    text = config.read_text().replace(
        "co2_g_per_kwh = 380", 'co2_g_per_kwh = 380\nco2_series = "grid-co2"'
    )
    config.write_text(text)
    co2 = CASE.parent.parent / "prices" / "co2_quarter_hours.csv"
    ok("prices", "import", co2, "--config", config, "--series", "grid-co2", "--minutes", "15")

    # Worked by hand in tests/cases/demand_peak/README.md, "CO2 from a series".
    lines = _export(config)
    name = {id(r): r["job_id"] or f"{r['machine']} overhead" for r in lines}
    assert {name[id(r)]: r["co2_kg"] for r in lines} == {
        "M1": "0.500",
        "mill overhead": "0.250",
        "L1": "0.158",
        "laser overhead": "0.292",
    }
    assert _amount(ok("bill", "--config", config, "--month", "2026-11"), "CO2") == "1.200"
    by_customer = csv.DictReader(
        io.StringIO(
            ok(
                "export",
                "--config",
                config,
                "--from",
                "2026-11-01",
                "--to",
                "2026-12-01",
                "--by",
                "customer",
            )
        )
    )
    assert {r["customer"]: r["co2_kg"] for r in by_customer} == {
        "cafe": "0.500",
        "designer": "0.158",
        "overhead": "0.542",  # the overhead lines
        "total": "1.200",
    }


def test_a_month_closed_before_frozen_bills_is_billed_from_the_readings_as_they_are(
    tmp_path: Path,
) -> None:
    config = _replayed(tmp_path)
    ok("close", "--config", config, "--month", "2026-11")
    ledger = config.parent / "shopwatt-data" / "ledger.sqlite"
    with closing(sqlite3.connect(ledger)) as conn, conn:
        conn.execute("DELETE FROM frozen_bills")  # as a close by an older shopwatt left it
    bill = ok("bill", "--config", config, "--month", "2026-11")
    assert "after the close" not in bill
    assert _amount(bill, "demand charge") == "80.00"  # computed now, as before frozen_bills
    assert _total(_export(config), "demand_cost") == Decimal("80.00")  # frozen_charges
