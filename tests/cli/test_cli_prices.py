"""`shopwatt prices import` and [tariff.spot]: the hand-computed case tests/cases/spot_dst."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from tests.ledger.shop import ok, shopwatt

CASE = Path(__file__).resolve().parents[1] / "cases" / "spot_dst"


def _export(config: Path) -> dict[str, dict[str, str]]:
    text = ok("export", "--config", config, "--from", "2026-10-25", "--to", "2026-10-27")
    return {r["start"][:10]: r for r in csv.DictReader(io.StringIO(text))}


def test_a_day_of_100_quarter_hour_prices_prices_every_quarter_hour_once(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    config = case / "shop.toml"
    want = json.loads((case / "expected_export.json").read_text())
    ok("replay", "--config", config, "--input", case / "readings.csv")
    # Before the prices arrive, every quarter hour is priced at the fallback.
    before = _export(config)
    assert before["2026-10-25"]["energy_cost"] == "15.00"  # 25 kWh x (0.50 + 0.10)

    printed = ok(
        "prices", "import", case / "prices.csv",
        "--config", config, "--series", "day-ahead", "--minutes", "15",
    )  # fmt: skip
    assert "imported 99 slots of day-ahead" in printed
    assert "recomputed press: 2026-10-25" in printed
    rows = _export(config)
    for day in ("2026-10-25", "2026-10-26"):
        assert {k: rows[day][k] for k in want[day]} == want[day], day
    bill = ok("bill", "--config", config, "--month", "2026-10")
    assert want["bill"]["fallback"] in bill


def test_a_bad_price_line_names_file_line_and_value(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    bad = case / "bad.csv"
    bad.write_text("start,price\n2026-10-25T00:00:00,100\n")
    result = shopwatt(
        "prices", "import", bad, "--config", case / "shop.toml", "--series", "day-ahead"
    )
    assert result.exit_code == 2
    assert f"{bad} line 2: start = '2026-10-25T00:00:00': no UTC offset" in result.stderr
