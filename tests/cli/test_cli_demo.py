"""`shopwatt demo`: the simulated shop day through the real path, checked against its truth."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from agent.shopday import simulate_shop_day
from tests.ledger.shop import shopwatt


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run (a whole simulated day: a couple of seconds)."""
    out = tmp_path_factory.mktemp("demo")
    result = shopwatt("demo", "--output", out)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_demo_prints_jobs_and_costs_and_where_the_files_are(demo: tuple[Path, str]) -> None:
    out, printed = demo
    csv_path = next(out.glob("costs-*[0-9].csv"))
    assert f"CSV:    {csv_path}" in printed
    assert f"XLSX:   {csv_path.with_suffix('.xlsx')}" in printed
    assert printed.splitlines()[0].split()[:3] == ["job", "machine", "customer"]
    total = next(line for line in printed.splitlines() if line.startswith("total (EUR)"))
    rows = list(csv.DictReader(csv_path.open()))
    assert total.split()[-1] == str(sum(Decimal(r["total_cost"]) for r in rows))
    assert openpyxl.load_workbook(csv_path.with_suffix(".xlsx")).sheetnames[0] == "rows"
    overhead = [line.split() for line in printed.splitlines() if line.startswith("(overhead)")]
    days = {r["start"][:10] for r in rows if r["kind"] == "overhead"}
    assert overhead and {cells[2] for cells in overhead} == days  # the day, not 00:00-00:00


def test_demo_energy_per_machine_matches_the_simulated_truth(demo: tuple[Path, str]) -> None:
    out, _ = demo
    rows = list(csv.DictReader(next(out.glob("costs-*[0-9].csv")).open()))
    shop = simulate_shop_day()  # the demo's default seed: the same day
    for machine, truth in shop.truth.items():
        mine = [r for r in rows if r["machine"] == machine]
        exported_wh = sum(Decimal(r["energy_kwh"]) for r in mine) * 1000
        # Only a counter that kept counting recovers the energy of a lost stretch.
        lost = sum(o.wh for o in truth.outages if not truth.counter or o.counter_reset)
        expected = Decimal(str(truth.energy_wh - lost))
        assert abs(exported_wh - expected) <= Decimal("1.5") * len(mine) + 1, machine
        booked = {j.job_id for j in truth.jobs} if truth.explicit else set()
        assert booked <= {r["job_id"] for r in mine}


def test_running_the_demo_again_gives_the_same_export(demo: tuple[Path, str]) -> None:
    out, _ = demo
    csv_path = next(out.glob("costs-*[0-9].csv"))
    xlsx_path = next(out.glob("costs-*[0-9].xlsx"))
    before = csv_path.read_bytes(), xlsx_path.read_bytes()
    refused = shopwatt("demo", "--output", out)
    assert refused.exit_code == 2
    assert "shop.toml: the file exists; use --force to replace it" in refused.stderr
    assert shopwatt("demo", "--output", out, "--force").exit_code == 0
    assert (csv_path.read_bytes(), xlsx_path.read_bytes()) == before


def test_demo_jobs_have_customers_and_each_customer_a_statement(demo: tuple[Path, str]) -> None:
    out, printed = demo
    rows = list(csv.DictReader(next(out.glob("costs-*[0-9].csv")).open()))
    jobs = [r for r in rows if r["kind"] == "job"]
    # Every job but the compressor's (it runs for the shop, not for a customer).
    assert {r["machine"] for r in jobs if not r["customer"]} == {"air-01"}
    sold = [r for r in jobs if r["price"]]
    assert sold and all(
        Decimal(r["margin"]) == Decimal(r["price"]) - Decimal(r["total_cost"]) for r in sold
    )
    customers = {r["customer"] for r in jobs if r["customer"]}
    assert {
        p.name.split("-2026")[0][len("statement-") :] for p in out.glob("statement-*.xlsx")
    } == customers
    assert "revenue" in printed and "margin" in printed


def test_demo_members_draw_their_jobs_and_the_prepaid_view_reconciles(
    demo: tuple[Path, str],
) -> None:
    out, printed = demo
    rows = list(csv.DictReader(next(out.glob("costs-*[0-9].csv")).open()))
    # Members' jobs on the demo day fit their prepaid hours: nothing is charged on top.
    assert {r["price"] for r in rows if r["kind"] == "job" and r["customer"] == "fablab"} == {
        "0.00"
    }
    sheet = openpyxl.load_workbook(next(out.glob("prepaid-*.xlsx"))).active
    assert sheet is not None
    lines = [[c.value for c in row] for row in sheet.iter_rows() if row[0].value]
    header = lines.index(
        ["member", "name", "opening", "received", "recognised", "closing", "currency"]
    )
    figures = {line[0]: line[2:6] for line in lines[header + 1 :]}
    assert set(figures) == {"fablab", "nowak", "total"}
    for opening, received, recognised, closing in figures.values():
        assert round(opening + received - recognised, 2) == closing  # cells hold floats
    assert figures["total"][1] == 240 + 700 + 280  # two blocks and a month's subscription
    assert "Prepaid hours: deferred revenue" in printed
    assert {p.name for p in out.glob("member-*.xlsx")} == {
        "member-fablab-2026-11.xlsx",
        "member-nowak-2026-11.xlsx",
    }
