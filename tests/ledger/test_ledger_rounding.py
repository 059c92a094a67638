"""A line adds up as it is read: energy_cost is the printed kWh of each band x its rate."""

from __future__ import annotations

import csv
import io
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from tests.ledger.shop import series, shopwatt, write_readings, write_shop

# Hand-worked: one job of exactly 3395.5 Wh (counter 1000.0 -> 4395.5 in 2-minute steps of
# 113 Wh, the last one 118.5; idle readings until the job is over) at 0.24/kWh. Printed:
# 3.396 kWh (half up); 3.396 x 0.24 = 0.81504 -> 0.82. The unrounded energy gives
# 3.3955 x 0.24 = 0.81492 -> 0.81: a figure nobody can check from the line.
_STEPS_WH = [113.0] * 29 + [118.5]
_COUNTER = [1000.0 + sum(_STEPS_WH[:k]) for k in range(len(_STEPS_WH) + 1)]
ONE_JOB = [
    "2025-11-04T09:58:00+01:00,mill,0,1000.0",
    *(
        f"2025-11-04T{10 + 2 * k // 60:02d}:{2 * k % 60:02d}:00+01:00,mill,3400,{wh}"
        for k, wh in enumerate(_COUNTER)
    ),
    *(f"2025-11-04T11:{m:02d}:00+01:00,mill,0,4395.5" for m in range(2, 12, 2)),
]


def _export(config: Path, first: str, end: str) -> list[dict[str, str]]:
    result = shopwatt("export", "--config", config, "--from", first, "--to", end)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _replay(config: Path, lines: list[str]) -> None:
    readings = write_readings(config.parent / "readings.csv", lines)
    result = shopwatt("replay", "--config", config, "--input", readings)
    assert result.exit_code == 0, result.output


def test_energy_cost_prices_the_printed_kwh_hand_worked(tmp_path: Path) -> None:
    config = write_shop(tmp_path, rate=0.24)
    _replay(config, ONE_JOB)
    job = next(r for r in _export(config, "2025-11-04", "2025-11-05") if r["kind"] == "job")
    assert (job["kwh_standard"], job["kwh_peak"], job["energy_kwh"]) == ("3.396", "0.000", "3.396")
    assert job["energy_cost"] == "0.82"


def test_every_line_adds_up_and_the_close_totals_are_the_sum_of_the_lines(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path, rate=0.23)
    mill = series(
        "mill",
        "2025-11-03 06:00",
        "2025-11-05 22:00",
        [
            ("2025-11-03 09:13", "2025-11-03 11:47", 2911.0),
            ("2025-11-03 15:31", "2025-11-03 17:09", 3307.0),  # across the peak edge
            ("2025-11-04 18:58", "2025-11-04 21:02", 1733.0),
            ("2025-11-05 07:07", "2025-11-05 08:01", 4121.0),
        ],
        step_s=37,
    )
    _replay(config, mill.lines())
    lines = _export(config, "2025-11-01", "2025-12-01")
    rates = {"kwh_standard": Decimal("0.23"), "kwh_peak": Decimal("0.40")}
    for line in lines:
        priced = sum(Decimal(line[band]) * rate for band, rate in rates.items())
        assert Decimal(line["energy_cost"]) == priced.quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert Decimal(line["energy_kwh"]) == sum(Decimal(line[band]) for band in rates)
    closed = shopwatt("close", "--config", config, "--month", "2025-11", "--yes")
    assert closed.exit_code == 0, closed.output
    found = re.search(r"frozen, (\S+) kWh, (\S+) total cost", closed.stdout)
    assert found, closed.stdout
    assert Decimal(found[1]) == sum(Decimal(line["energy_kwh"]) for line in lines)
    assert Decimal(found[2]) == sum(Decimal(line["total_cost"]) for line in lines)
