"""`shopwatt prices import` and [tariff.spot]: the hand-computed case tests/cases/spot_dst."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.ledger.shop import ok, shopwatt
from tests.servers import Influxd

CASE = Path(__file__).resolve().parents[1] / "cases" / "spot_dst"
BERLIN = ZoneInfo("Europe/Berlin")


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
    # The import is the newest audit entry: status shows it on its line of recent changes.
    trail = ok("status", "--config", config).split("recent changes:")[1]
    assert f" prices day-ahead: 99 slots from {case / 'prices.csv'} (sha256 " in trail


def test_prices_imported_after_the_readings_reprice_the_days_energy_points(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    config = case / "shop.toml"
    with config.open("a") as f:
        f.write(f'\n[influxdb]\nurl = "{influxd.url}"\ndatabase = "{influx_db}"\n')
    day = "time >= '2026-10-24T22:00:00Z' AND time < '2026-10-25T23:00:00Z'"

    def grafana_cost() -> float:
        (row,) = influxd.rows(f"SELECT sum(cost) FROM energy WHERE {day}", influx_db)
        return float(row["sum"])

    ok("replay", "--config", config, "--input", case / "readings.csv")
    assert grafana_cost() == pytest.approx(15.00)  # every quarter hour at the fallback
    ok(
        "prices", "import", case / "prices.csv",
        "--config", config, "--series", "day-ahead", "--minutes", "15",
    )  # fmt: skip
    assert grafana_cost() == pytest.approx(5.30)  # the export's line (README.md)


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


def test_a_day_of_92_quarter_hour_prices(tmp_path: Path) -> None:
    # 29 March 2026: 23 hours. 1000 W all day, prices 100, 101, 102, 103 EUR/MWh in each
    # hour's quarters (mean 101.5): 23 kWh x 0.1015 = 2.3345, plus 23.000 kWh x 0.10 = 2.30
    # on top: 4.6345 -> 4.63.
    shutil.copytree(CASE, tmp_path / "case")
    config = tmp_path / "case" / "shop.toml"
    start = datetime(2026, 3, 29, tzinfo=BERLIN).astimezone(UTC)
    lines = ["time,machine,watts,wh"]
    for k in range(93):
        t = (start + timedelta(minutes=15 * k)).astimezone(BERLIN).isoformat()
        lines.append(f"{t},press,1000,{1000 + 250 * k}")
    readings = tmp_path / "spring.csv"
    readings.write_text("\n".join(lines) + "\n")
    ok("replay", "--config", config, "--input", readings)
    spring = Path(__file__).resolve().parents[1] / "prices" / "plain_spring_15min.csv"
    ok("prices", "import", spring, "--config", config, "--series", "day-ahead", "--minutes", "15")
    text = ok("export", "--config", config, "--from", "2026-03-29", "--to", "2026-03-30")
    (row,) = csv.DictReader(io.StringIO(text))
    assert (row["energy_kwh"], row["energy_cost"]) == ("23.000", "4.63")
