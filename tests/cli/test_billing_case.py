"""tests/cases/billing through the commands its README lists: every figure worked by hand."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from tests.ledger.shop import ok

CASE = Path(__file__).parents[1] / "cases" / "billing"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The case's shop after every command of its README."""
    folder = tmp_path_factory.mktemp("billing")
    for name in ("shop.toml", "readings.csv", "jobs.csv"):
        shutil.copy(CASE / name, folder / name)
    config = folder / "shop.toml"

    def run(*args: str) -> str:
        return ok(*args, "--config", config)

    run("customer", "add", "acme", "--name", "ACME GmbH", "--vat-id", "DE111111111")
    run("customer", "add", "beta", "--name", "Beta Design", "--price-list", "member")
    run("replay", "--input", str(folder / "readings.csv"), "--jobs", str(folder / "jobs.csv"))
    assign = ("job", "assign")
    run(*assign, "mill-20261030-001", "--customer", "acme", "--order", "PO-7", "--parts", "20")
    run("close", "--month", "2026-10", "--yes")
    run("job", "split", "mill-20261103-001", "--at", "2026-11-03T14:00:00+01:00")
    run(*assign, "mill-20261103-001", "--customer", "acme", "--order", "PO-1", "--parts", "10")
    run(
        *assign,
        "mill-20261103-001-2",
        "--customer",
        "beta",
        "--order",
        "PO-2",
        "--parts",
        "40",
        "--scrap",
        "2",
    )
    moved = run(
        *assign, "mill-20261030-001", "--customer", "beta", "--order", "PO-7", "--parts", "20"
    )
    assert "2 adjustment rows pending for closed months" in moved
    return config


def _export(config: Path, month: str, *more: str) -> list[dict[str, str]]:
    text = ok("export", "--config", config, "--month", month, *more)
    return list(csv.DictReader(io.StringIO(text)))


def _pick(rows: list[dict[str, str]], *names: str) -> dict[str, tuple[str, ...]]:
    """job id (or kind + customer for adjustments) -> the named columns."""
    out = {}
    for r in rows:
        key = r["job_id"] or r["kind"]
        if r["kind"] == "adjustment":
            key = f"{key} ({r['customer']})"
        out[key] = tuple(r[n] for n in names)
    return out


COLUMNS = ("customer", "order", "parts", "price", "total_cost", "margin", "cost_per_part")


def test_october_stays_as_it_was_closed(shop: Path) -> None:
    assert _pick(_export(shop, "2026-10"), *COLUMNS) == {
        "overhead": ("", "", "0", "", "0.24", "", ""),
        "mill-20261030-001": ("acme", "PO-7", "20", "111.73", "3.44", "108.29", "0.1720"),
        "E-1": ("acme", "", "0", "111.73", "3.44", "108.29", ""),
    }


def test_november_has_the_split_the_assignments_and_the_correction(shop: Path) -> None:
    rows = _export(shop, "2026-11")
    assert _pick(rows, *COLUMNS, "kwh_per_part", "scrap", "corrects") == {
        "mill-20261030-001 (acme)": (
            "acme",
            "PO-7",
            "-20",
            "-111.73",
            "-3.44",
            "-108.29",
            "",
            "",
            "0",
            "2026-10",
        ),
        "mill-20261030-001 (beta)": (
            "beta",
            "PO-7",
            "20",
            "80.00",
            "3.44",
            "76.56",
            "0.1720",
            "0.240",
            "0",
            "2026-10",
        ),
        "overhead": ("", "", "0", "", "0.24", "", "", "", "0", ""),
        "E-2": ("beta", "", "0", "40.00", "1.72", "38.28", "", "", "0", ""),
        "mill-20261103-001": (
            "acme",
            "PO-1",
            "10",
            "60.86",
            "1.72",
            "59.14",
            "0.1720",
            "0.240",
            "0",
            "",
        ),
        "mill-20261103-001-2": (
            "beta",
            "PO-2",
            "40",
            "80.00",
            "3.44",
            "76.56",
            "0.0860",
            "0.120",
            "2",
            "",
        ),
    }


def test_november_by_customer(shop: Path) -> None:
    groups = _export(shop, "2026-11", "--by", "customer")
    assert [
        (g["customer"], g["rows"], g["price"], g["total_cost"], g["margin"]) for g in groups
    ] == [
        ("acme", "2", "-50.87", "-1.72", "-49.15"),
        ("beta", "3", "200.00", "8.60", "191.40"),
        ("overhead", "1", "", "0.24", ""),
        ("total", "6", "149.13", "7.12", "142.25"),
    ]


@pytest.mark.parametrize(
    ("customer", "lines", "net", "vat", "gross"),
    [
        (
            "Beta Design",
            [("2026-11-01", "80.00"), ("2026-11-03", "40.00"), ("2026-11-03", "80.00")],
            "200.00",
            "38.00",
            "238.00",
        ),
        ("acme", [("2026-11-01", "-111.73"), ("2026-11-03", "60.86")], "-50.87", "-9.67", "-60.54"),
    ],
)
def test_statements_of_november(
    shop: Path,
    tmp_path: Path,
    customer: str,
    lines: list[tuple[str, str]],
    net: str,
    vat: str,
    gross: str,
) -> None:
    out = tmp_path / "statement.csv"
    ok("statement", "--config", shop, "--customer", customer, "--month", "2026-11", "--output", out)
    got = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    *jobs, total_net, total_vat, total_gross = got
    assert [(j["date"], j["price"]) for j in jobs] == lines
    assert "total_cost" not in got[0]  # the shop's own costs only with --internal
    assert (total_net["date"], total_net["price"]) == ("net", net)
    assert (total_vat["date"], total_vat["price"]) == ("VAT 19 %", vat)
    assert (total_gross["date"], total_gross["price"]) == ("gross", gross)


def test_the_statement_as_xlsx_and_with_internal_costs(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "beta.xlsx"
    args = ("--customer", "beta", "--month", "2026-11", "--internal")
    ok("statement", "--config", shop, *args, "--output", out)
    grid = list(openpyxl.load_workbook(out)["statement"].values)
    assert grid[0][0] == "Statement Beta Design"
    head = next(k for k, line in enumerate(grid) if line[0] == "date")
    header = grid[head]
    assert {"total_cost", "margin", "cost_per_part"} <= set(header)
    gross = grid[-1]
    assert gross[0] == "gross" and Decimal(str(gross[header.index("price")])) == Decimal("238")
    text = ok("statement", "--config", shop, "--customer", "beta", "--month", "2026-11")
    assert "VAT id: -" in text and "gross" in text
