"""`shopwatt demo`: the simulated shop day through the real path, checked against its truth."""

from __future__ import annotations

import csv
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pytest

from agent.shopday import simulate_shop_day
from gateway.config import load_config
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


def test_every_line_of_the_demo_export_adds_up_as_it_is_read(demo: tuple[Path, str]) -> None:
    # A calculator and the printed line must agree: the printed hours x the machine-hour
    # rate, rounded half up to cents (cnc-02-20261117-002: 1.3208 h x 1.20 = 1.58496 -> 1.58).
    out, _ = demo
    machines = load_config(out / "shop.toml").machines
    rows = list(csv.DictReader(next(out.glob("costs-*.csv")).open()))
    assert any(r["kind"] == "job" for r in rows)
    for r in rows:
        cost = machines[r["machine"]].cost
        job = r["kind"] == "job"  # overhead lines carry no machine-hour costs
        dep_h = r["duration_h"] if cost.depreciation_basis == "job_hours" else r["run_h"]
        for name, hours, rate in (
            ("depreciation_cost", dep_h, cost.depreciation_per_hour),
            ("maintenance_cost", r["run_h"], cost.maintenance_per_run_hour),
        ):
            priced = Decimal(hours) * Decimal(repr(rate)) if job else Decimal(0)
            expected = priced.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            assert Decimal(r[name]) == expected, (r["job_id"] or r["kind"], name, hours, rate)
        parts = ("energy_cost", "depreciation_cost", "maintenance_cost")
        assert Decimal(r["total_cost"]) == sum(Decimal(r[p]) for p in parts), r["job_id"]


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


def test_the_demo_never_replays_into_a_real_shops_folder(tmp_path: Path) -> None:
    shop = tmp_path / "shop.toml"
    shop.write_text("# my workshop\n[site]\nid = 'real'\n")
    ledger = tmp_path / "shopwatt-data" / "ledger.sqlite"
    ledger.parent.mkdir()
    ledger.write_bytes(b"a real shop's ledger")
    for args in ((), ("--force",)):
        refused = shopwatt("demo", "--output", tmp_path, *args)
        assert refused.exit_code == 2, refused.output
        assert f"{shop}: not a demo's shop.toml" in refused.stderr
    assert shop.read_text().startswith("# my workshop")
    assert ledger.read_bytes() == b"a real shop's ledger"
    shop.unlink()  # a ledger without a demo's shop.toml is not the demo's either
    refused = shopwatt("demo", "--output", tmp_path, "--force")
    assert refused.exit_code == 2 and f"{ledger.parent}: exists" in refused.stderr
    assert ledger.read_bytes() == b"a real shop's ledger"


def test_a_demo_rerun_with_another_seed_starts_from_an_empty_ledger(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = demo
    again = tmp_path / "again"
    again.mkdir()
    for name in ("shop.toml", "readings.csv", "jobs.csv"):
        (again / name).write_bytes((out / name).read_bytes())
    (again / "shopwatt-data").mkdir()
    (again / "shopwatt-data" / "ledger.sqlite").write_bytes(
        (out / "shopwatt-data" / "ledger.sqlite").read_bytes()
    )
    result = shopwatt("demo", "--output", again, "--seed", "8", "--force")
    assert result.exit_code == 0, result.output
    # Seed 8's readings all land: none is taken for a repeat of seed 7's (same day, times).
    assert " 0 rows already in the ledger" in result.stderr
    rows = list(csv.DictReader(next(again.glob("costs-*.csv")).open()))
    truth = simulate_shop_day(8).truth
    assert {r["job_id"] for r in rows} >= {
        j.job_id for t in truth.values() for j in t.jobs if t.explicit
    }


def test_demo_prints_the_months_bill_whose_charges_are_in_the_export(
    demo: tuple[Path, str],
) -> None:
    out, printed = demo
    rows = list(csv.DictReader(next(out.glob("costs-*[0-9].csv")).open()))
    # The demo prices energy with the day-ahead series it writes: every quarter hour priced.
    assert (out / "prices.csv").exists() and "fallback" not in printed
    charge = next(line for line in printed.splitlines() if line.strip().startswith("demand charge"))
    assert Decimal(charge.split()[-1]) > 0  # the demo tariff has a demand charge
    assert Decimal(charge.split()[-1]) == sum(Decimal(r["demand_cost"]) for r in rows)
    net = next(line for line in printed.splitlines() if line.startswith("net "))
    charged = ("energy_cost", "demand_cost", "fixed_cost")
    # The demo's ledger holds one day: the month's bill is that day's export.
    assert Decimal(net.split()[-1]) == sum(Decimal(r[c]) for r in rows for c in charged)


def test_demo_writes_a_self_contained_report_of_the_day(demo: tuple[Path, str]) -> None:
    out, printed = demo
    report = out / "report.html"
    assert f"report: {report}" in printed
    page = report.read_text(encoding="utf-8")
    rows = list(csv.DictReader(next(out.glob("costs-*.csv")).open()))
    # Every job of the export is drawn (its id in the block's hover text), every customer
    # is in the cost-per-customer chart, and nothing is loaded from elsewhere.
    for row in rows:
        if row["kind"] == "job":
            assert f"<title>{row['job_id']} " in page
    assert {r["customer"] for r in rows if r["customer"]} <= set(
        re.findall(r">([^<>]+)</text>", page)
    )
    assert page.count("<svg") == 5
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", page)
