"""`shopwatt export`: stable columns, lines that add up, grouped views, XLSX = CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from tests.ledger.shop import series, shopwatt, write_readings, write_shop

COLUMNS = (
    "kind,job_id,machine,customer,start,end,duration_h,run_h,energy_kwh,kwh_standard,kwh_peak,"
    "energy_cost,depreciation_cost,maintenance_cost,total_cost,demand_cost,fixed_cost,co2_kg,solar_kwh,solar_cost,"
    "currency"
)
MONEY = ("energy_cost", "depreciation_cost", "maintenance_cost")
NUMBERS = ("duration_h", "run_h", "energy_kwh", "kwh_standard", "kwh_peak", *MONEY, "total_cost")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two machines over two weekdays, explicit jobs with customers on the lathe."""
    folder = tmp_path_factory.mktemp("shop")
    config = write_shop(folder)
    mill = series(
        "mill",
        "2026-11-03 06:00",
        "2026-11-04 21:00",
        [
            ("2026-11-03 15:10", "2026-11-03 17:40", 3100.0),
            ("2026-11-04 19:00", "2026-11-04 21:00", 2600.0),
        ],
    )
    lathe = series(
        "lathe",
        "2026-11-03 06:00",
        "2026-11-04 20:00",
        [("2026-11-03 09:00", "2026-11-03 12:00", 1800.0)],
    )
    readings = write_readings(folder / "r.csv", mill.lines() + lathe.lines())
    jobs = folder / "jobs.csv"
    jobs.write_text(
        "job_id,machine,start,end,customer\n"
        "A-1,lathe,2026-11-03T09:00:00+01:00,2026-11-03T10:30:00+01:00,ACME\n"
        "A-2,lathe,2026-11-03T10:30:00+01:00,2026-11-03T12:00:00+01:00,Beta\n"
        "A-3,lathe,2026-11-03T16:00:00+01:00,2026-11-03T16:30:00+01:00,ACME\n"
    )
    result = shopwatt("replay", "--config", config, "--input", readings, "--jobs", jobs)
    assert result.exit_code == 0, result.output
    return config


def _csv(config: Path, *extra: str) -> tuple[str, list[dict[str, str]], str]:
    result = shopwatt(
        "export", "--config", config, "--from", "2026-11-03", "--to", "2026-11-05", *extra
    )
    assert result.exit_code == 0, result.output
    return (
        result.stdout.splitlines()[0],
        list(csv.DictReader(io.StringIO(result.stdout))),
        result.stderr,
    )


def test_columns_are_exactly_the_documented_ones(shop: Path) -> None:
    header, rows, _ = _csv(shop)
    assert header == COLUMNS
    assert {r["kind"] for r in rows} == {"job", "overhead"}
    assert {r["currency"] for r in rows} == {"EUR"}
    first = next(r for r in rows if r["job_id"] == "A-1")
    assert (first["start"], first["end"]) == (
        "2026-11-03T09:00:00+01:00",
        "2026-11-03T10:30:00+01:00",
    )


def test_every_line_adds_up_as_printed(shop: Path) -> None:
    _, rows, _ = _csv(shop)
    for r in rows:
        assert Decimal(r["energy_kwh"]) == Decimal(r["kwh_standard"]) + Decimal(r["kwh_peak"])
        assert Decimal(r["total_cost"]) == sum(Decimal(r[m]) for m in MONEY)
        assert len(r["energy_kwh"].split(".")[1]) == 3
        assert len(r["total_cost"].split(".")[1]) == 2
        assert len(r["run_h"].split(".")[1]) == 4
    peak_job = next(r for r in rows if r["job_id"] == "mill-20261103-001")
    assert Decimal(peak_job["kwh_peak"]) > 0 and Decimal(peak_job["kwh_standard"]) > 0


def test_a_job_still_running_at_the_end_of_the_data_is_left_out_with_a_note(shop: Path) -> None:
    _, rows, note = _csv(shop)
    assert "mill-20261104-001" not in {r["job_id"] for r in rows}
    assert "1 job(s) still running at the end of the data are not exported" in note


@pytest.mark.parametrize("by", ["customer", "machine"])
def test_grouped_views_sum_the_printed_lines(shop: Path, by: str) -> None:
    _, rows, _ = _csv(shop)
    header, groups, _ = _csv(shop, "--by", by)
    assert header.split(",")[:2] == [by, "rows"]
    assert header.split(",")[2:] == COLUMNS.split(",")[6:]
    for group in groups:
        members = [r for r in rows if r[by] == group[by]]
        assert int(group["rows"]) == len(members)
        for name in NUMBERS:
            assert Decimal(group[name]) == sum(Decimal(r[name]) for r in members), name
    if by == "customer":
        assert [g["customer"] for g in groups] == ["", "ACME", "Beta"]


def test_xlsx_holds_the_same_rows_and_totals_per_machine_and_customer(
    shop: Path, tmp_path: Path
) -> None:
    _, rows, _ = _csv(shop)
    out = tmp_path / "costs.xlsx"
    result = shopwatt(
        "export", "--config", shop, "--from", "2026-11-03", "--to", "2026-11-05", "--output", out
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["rows", "by machine", "by customer"]
    sheet = list(book["rows"].values)
    assert ",".join(sheet[0]) == COLUMNS
    assert len(sheet) - 1 == len(rows)
    for by in ("machine", "customer"):
        grid = list(book[f"by {by}"].values)
        head, body, total = grid[0], grid[1:-1], grid[-1]
        assert total[0] == "total"
        for name in NUMBERS:
            k = head.index(name)
            csv_sum = sum(Decimal(r[name]) for r in rows)
            assert Decimal(str(total[k])) == csv_sum, (by, name)
            assert sum(Decimal(str(line[k])) for line in body) == csv_sum


def test_a_bad_date_range_is_refused(shop: Path) -> None:
    result = shopwatt("export", "--config", shop, "--from", "2026-11-05", "--to", "2026-11-03")
    assert result.exit_code == 2
    assert "must be after --from" in result.output


def test_xlsx_holds_every_view_whatever_by_says(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "by-customer.xlsx"
    args = ["--from", "2026-11-03", "--to", "2026-11-05", "--output", out, "--by", "customer"]
    assert shopwatt("export", "--config", shop, *args).exit_code == 0
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["rows", "by machine", "by customer"]
    assert ",".join(next(book["rows"].values)) == COLUMNS
