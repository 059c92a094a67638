"""`shopwatt export`: stable columns, lines that add up, grouped views, XLSX = CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from tests.ledger.shop import series, shopwatt, write_readings, write_shop

COLUMNS = (
    "kind,job_id,machine,customer,start,end,duration_h,run_h,energy_kwh,kwh_standard,kwh_peak,"
    "energy_cost,depreciation_cost,maintenance_cost,total_cost,demand_cost,fixed_cost,co2_kg,"
    "solar_kwh,solar_cost,currency,order,parts,scrap,kwh_per_part,cost_per_part,price,margin,"
    "corrects"
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
    result = shopwatt(
        "replay", "--config", config, "--input", readings, "--jobs", jobs, "--create-customers"
    )
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


_ALL = COLUMNS.split(",")
GROUPED = [*_ALL[_ALL.index("duration_h") : _ALL.index("currency") + 1], "parts", "scrap"]
GROUPED += ["kwh_per_part", "cost_per_part", "price", "margin"]


def _members(rows: list[dict[str, str]], by: str, name: str) -> list[dict[str, str]]:
    """The lines a group sums: overhead and unassigned jobs are groups of their own."""
    if by == "machine":
        return [r for r in rows if r["machine"] == name]
    if name == "overhead":
        return [r for r in rows if not r["job_id"]]
    customer = "" if name == "(unassigned)" else name
    return [r for r in rows if r["job_id"] and r["customer"] == customer]


@pytest.mark.parametrize("by", ["customer", "machine"])
def test_grouped_views_sum_the_printed_lines_and_end_with_a_total(shop: Path, by: str) -> None:
    _, rows, _ = _csv(shop)
    header, groups, _ = _csv(shop, "--by", by)
    assert header.split(",") == [by, "rows", *GROUPED]
    *named, total = groups
    assert total[by] == "total" and int(total["rows"]) == len(rows)
    for group in named:
        members = _members(rows, by, group[by])
        assert int(group["rows"]) == len(members)
        for name in NUMBERS[1:]:
            assert Decimal(group[name]) == sum(Decimal(r[name]) for r in members), name
        # Durations only of jobs: an overhead row's 24 h are nobody's working time.
        jobs = [Decimal(r["duration_h"]) for r in members if r["job_id"]]
        assert group["duration_h"] == (str(sum(jobs, Decimal(0))) if jobs else "")
    for name in NUMBERS[1:]:
        assert Decimal(total[name]) == sum(Decimal(r[name]) for r in rows), name
    if by == "customer":
        assert [g["customer"] for g in named] == ["ACME", "Beta", "(unassigned)", "overhead"]


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
    assert book.sheetnames == ["rows", "by machine", "by customer", "by order"]
    sheet = _table(book["rows"])
    assert ",".join(sheet[0]) == COLUMNS
    assert len(sheet) - 2 == len(rows)  # the header, the rows, a total line
    for by in ("rows", "by machine", "by customer", "by order"):
        grid = _table(book[by])
        head, body, total = grid[0], grid[1:-1], grid[-1]
        assert total[0] == "total"
        for name in NUMBERS[1:]:
            k = head.index(name)
            csv_sum = sum(Decimal(r[name]) for r in rows)
            assert Decimal(str(total[k])) == csv_sum, (by, name)
            assert sum(Decimal(str(line[k])) for line in body) == csv_sum


HEADER_ROW = 7  # below a title block of five lines and an empty one


def _table(ws: Any) -> list[tuple[Any, ...]]:
    """A sheet's table: its header line and what follows."""
    return list(ws.values)[HEADER_ROW - 1 :]


def test_xlsx_is_what_an_accountant_opens(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "costs.xlsx"
    assert (
        shopwatt("export", "--config", shop, "--month", "2026-11", "--output", out).exit_code == 0
    )
    book = openpyxl.load_workbook(out)
    for ws in book.worksheets:
        grid = list(ws.values)
        assert grid[0][0].startswith("shopwatt export")
        assert {line[0]: line[1] for line in grid[1:5]} == {
            "site": "test-shop",
            "period": "2026-11-01 .. 2026-11-30 (Europe/Berlin)",
            "tariff": "tou",
            "status": "open",
        }
        assert ws.freeze_panes == f"A{HEADER_ROW + 1}"
        assert ws.auto_filter.ref.startswith(f"A{HEADER_ROW}:")
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage
    rows = book["rows"]
    header = [c.value for c in rows[HEADER_ROW]]
    first = rows.cell(row=HEADER_ROW + 1, column=header.index("start") + 1)
    assert isinstance(first.value, datetime)  # a date Excel sorts and filters, not text
    assert first.number_format == "yyyy-mm-dd hh:mm:ss"
    job_id = get_column_letter(header.index("job_id") + 1)
    assert rows.column_dimensions[job_id].width >= len("mill-20261103-001")
    *lines, total = _table(rows)[1:]
    hours = header.index("duration_h")
    jobs = sum(Decimal(str(line[hours])) for line in lines if line[1])
    assert total[0] == "total" and Decimal(str(total[hours])) == jobs  # no overhead days


def test_a_bad_date_range_is_refused(shop: Path) -> None:
    result = shopwatt("export", "--config", shop, "--from", "2026-11-05", "--to", "2026-11-03")
    assert result.exit_code == 2
    assert "must be after --from" in result.output


def test_xlsx_holds_every_view_whatever_by_says(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "by-customer.xlsx"
    args = ["--from", "2026-11-03", "--to", "2026-11-05", "--output", out, "--by", "customer"]
    assert shopwatt("export", "--config", shop, *args).exit_code == 0
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["rows", "by machine", "by customer", "by order"]
    assert ",".join(_table(book["rows"])[0]) == COLUMNS


def test_month_customer_and_machine_narrow_the_export(shop: Path) -> None:
    _, rows, _ = _csv(shop)
    month = shopwatt("export", "--config", shop, "--month", "2026-11")
    whole = shopwatt("export", "--config", shop, "--from", "2026-11-01", "--to", "2026-12-01")
    assert month.stdout == whole.stdout
    acme = shopwatt("export", "--config", shop, "--month", "2026-11", "--customer", " acme ")
    assert acme.exit_code == 0, acme.stderr
    got = list(csv.DictReader(io.StringIO(acme.stdout)))
    assert got == [r for r in rows if r["customer"] == "ACME"] and got
    lathe = shopwatt("export", "--config", shop, "--month", "2026-11", "--machine", "lathe")
    assert {r["machine"] for r in csv.DictReader(io.StringIO(lathe.stdout))} == {"lathe"}
    bad = shopwatt("export", "--config", shop, "--month", "2026-11", "--customer", "acne")
    assert bad.exit_code == 2
    assert "--customer: customer 'acne' is not known (closest: ACME)" in bad.stderr
    bad = shopwatt("export", "--config", shop, "--month", "2026-11", "--machine", "saw")
    assert bad.exit_code == 2 and "--machine = 'saw': not a machine" in bad.stderr


def test_excel_eu_dialect_is_semicolons_decimal_commas_and_a_bom(
    shop: Path, tmp_path: Path
) -> None:
    _, rows, _ = _csv(shop)
    out = tmp_path / "eu.csv"
    args = ["--month", "2026-11", "--dialect", "excel-eu", "--output", out]
    assert shopwatt("export", "--config", shop, *args).exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    got = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert len(got) == len(rows)
    for eu, plain in zip(got, rows, strict=True):
        assert eu["energy_kwh"] == plain["energy_kwh"].replace(".", ",")
        assert eu["start"] == plain["start"]  # times keep their ISO form
