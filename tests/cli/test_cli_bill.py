"""`shopwatt bill`: the hand-computed case tests/cases/demand_peak through replay + bill."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

from tests.ledger.shop import ok

CASE = Path(__file__).resolve().parents[1] / "cases" / "demand_peak"


def _amount(text: str, label: str) -> str:
    """The figure at the end of the bill line that starts with `label`."""
    line = next(x for x in text.splitlines() if x.strip().startswith(label))
    return line.split()[-1]


def test_the_demand_peak_is_billed_and_shared_by_the_jobs_that_made_it(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    config = case / "shop.toml"
    ok("replay", "--config", config, "--input", case / "readings.csv", "--jobs", case / "jobs.csv")
    want = json.loads((case / "expected_bill.json").read_text())

    bill = ok("bill", "--config", config, "--month", want["month"])

    assert _amount(bill, "kwh_standard") == want["kwh_standard"]
    assert _amount(bill, "energy cost") == want["energy_cost"]
    peak = next(x for x in bill.splitlines() if "peak 15-minute average" in x)
    assert f"at {want['peak_at']}" in peak and peak.endswith(f"{want['peak_kw']} kW")
    assert _amount(bill, "demand charge") == want["demand_charge"]
    for who, cents in want["shares"].items():
        assert _amount(bill, f"{who}:") == cents, who
    for label in ("days", "per_month", "net", "vat", "total"):
        pattern = {"days": "30 days", "per_month": "per month", "vat": "VAT"}.get(label, label)
        assert _amount(bill, pattern) == want[label], label


def test_the_bill_energy_cost_is_the_sum_of_the_export_lines(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    config = case / "shop.toml"
    ok("replay", "--config", config, "--input", case / "readings.csv", "--jobs", case / "jobs.csv")
    want = json.loads((case / "expected_bill.json").read_text())
    text = ok("export", "--config", config, "--from", "2026-11-01", "--to", "2026-12-01")
    lines = list(csv.DictReader(io.StringIO(text)))
    by_name = {r["job_id"] or f"{r['machine']} overhead": r["energy_cost"] for r in lines}
    assert by_name == want["export_energy_cost"]
    bill = ok("bill", "--config", config, "--month", "2026-11")
    total = sum((Decimal(r["energy_cost"]) for r in lines), Decimal(0))
    assert Decimal(_amount(bill, "energy cost")) == total
    shares = [Decimal(m) for m in re.findall(r"kWh in the peak +(\S+)", bill)]
    assert sum(shares) == Decimal(_amount(bill, "demand charge"))
