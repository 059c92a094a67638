"""The engine's hand-computed golden cases (tests/cases/) through `shopwatt replay` + `export`.

Same folders, same expected.json as tests/engine: here every expected row must come out of
the whole user path (CSV loader, ledger, rounding, export) as the accountant reads it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.engine.localtime import local_date
from gateway.ledger.units import cents, hours, kwh, money
from tests.engine.engine_cases import column_names
from tests.ledger.shop import shopwatt, stored_readings

CASES = Path(__file__).resolve().parents[1] / "cases"
FOLDERS = sorted(p for p in CASES.iterdir() if (p / "expected.json").exists())


def _replay_and_export(
    folder: Path, tmp_path: Path
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    case = tmp_path / folder.name
    shutil.copytree(folder, case, ignore=shutil.ignore_patterns("shopwatt-data"))
    args: list[str | Path] = [
        "replay",
        "--config",
        case / "shop.toml",
        "--input",
        case / "readings.csv",
    ]
    if (case / "jobs.csv").exists():
        args += ["--jobs", case / "jobs.csv", "--create-customers"]
    replayed = shopwatt(*args)
    assert replayed.exit_code == 0, replayed.output
    expected = json.loads((case / "expected.json").read_text())["rows"]
    cfg = load_config(case / "shop.toml")
    readings = stored_readings(cfg).values()
    t_first = min(int(r.t_ms[0]) for r in readings)
    t_last = max(int(r.t_ms[-1]) for r in readings)
    # A day either side: every row of the case, whatever its day, is in the export.
    first = local_date(t_first, cfg.site.tz) - timedelta(days=1)
    end = local_date(t_last, cfg.site.tz) + timedelta(days=2)
    exported = shopwatt(
        "export", "--config", case / "shop.toml", "--from", str(first), "--to", str(end)
    )
    assert exported.exit_code == 0, exported.output
    return expected, list(csv.DictReader(io.StringIO(exported.stdout)))


def _engine_order(lines: list[dict[str, str]], machines: list[str]) -> list[dict[str, str]]:
    """The order tests/engine lists rows in: machine (config order), start, overhead first."""
    return sorted(
        lines,
        key=lambda r: (
            machines.index(r["machine"]),
            datetime.fromisoformat(r["start"]),
            r["kind"] == "job",
            r["job_id"],
        ),
    )


def _priced(want: dict[str, Any], rates: dict[str, float]) -> Decimal:
    """The energy cost of the printed kWh of each priced column (docs/accounting.md,
    Rounding): the bands, or with tariff versions the case's '<version>/<band>' columns."""
    wh = want.get("priced_wh", want["wh"])
    cost = sum(
        (kwh(wh.get(column, 0.0)) * Decimal(str(rate)) for column, rate in rates.items()),
        Decimal(0),
    )
    return cost.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _is_band(column: str) -> bool:
    return column.startswith("kwh_") and column != "kwh_per_part"


def _differences(got: dict[str, str], want: dict[str, Any], rates: dict[str, float]) -> list[str]:
    """Printed values against the hand-computed ones, for the keys the case writes down."""
    printed: dict[str, Decimal | str] = {
        k: got[k] for k in ("kind", "job_id", "machine", "customer", "start", "end")
    }
    expected: dict[str, Decimal | str] = {k: want[k] for k in printed if k in want}
    if "run_s" in want:
        printed["run_h"], expected["run_h"] = Decimal(got["run_h"]), hours(want["run_s"])
    for cost in ("depreciation_cost", "maintenance_cost"):
        if cost in want:
            printed[cost], expected[cost] = Decimal(got[cost]), money(cents(want[cost]))
    if "wh" in want:  # priced by hand from the printed kWh, as the ledger does
        printed["energy_cost"], expected["energy_cost"] = (
            Decimal(got["energy_cost"]),
            _priced(want, rates),
        )
    bands = {name: Decimal(v) for name, v in got.items() if _is_band(name)}
    for band, wh in want.get("wh", {}).items():
        printed[f"kwh_{band}"], expected[f"kwh_{band}"] = bands[f"kwh_{band}"], kwh(wh)
    if Decimal(got["energy_kwh"]) != sum(bands.values()):
        return [f"{got['job_id'] or got['kind']}: energy_kwh is not the sum of the bands"]
    return [
        f"{got['job_id'] or got['kind']} {k}: {printed[k]} != expected {v}"
        for k, v in expected.items()
        if printed[k] != v
    ]


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_golden_case_through_replay_and_export(folder: Path, tmp_path: Path) -> None:
    expected, lines = _replay_and_export(folder, tmp_path)
    final = [r for r in expected if not r.get("open", False)]
    cfg = load_config(folder / "shop.toml")
    names = column_names(cfg.tariff) if cfg.tariff.version else cfg.tariff.band_names
    rates = dict(zip(names, cfg.tariff.rates, strict=True))
    lines = _engine_order(lines, list(cfg.machines))
    assert len(lines) == len(final), [line["job_id"] or line["kind"] for line in lines]
    problems = [
        p for got, want in zip(lines, final, strict=True) for p in _differences(got, want, rates)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_golden_case_export_reconciles_with_metered_energy(folder: Path, tmp_path: Path) -> None:
    expected, lines = _replay_and_export(folder, tmp_path)
    stats = json.loads((folder / "expected.json").read_text())["stats"]
    metered_wh = sum(s["metered_wh"] for s in stats.values())
    open_wh = sum(sum(r["wh"].values()) for r in expected if r.get("open", False))
    exported = sum(Decimal(line["energy_kwh"]) for line in lines)
    bands = sum(map(_is_band, lines[0])) if lines else 0
    assert abs(exported * 1000 - Decimal(str(metered_wh - open_wh))) <= Decimal(
        "0.5"
    ) * bands * len(lines)
