"""Golden cases: a folder per case (shop.toml, readings.csv, [jobs.csv], expected.json).

The CSV reader here is deliberately tiny (the production loader is gateway/inputs); the
file formats are exactly those of `shopwatt replay`, so the same folders can be replayed.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config import ShopConfig, Tariff, load_config
from gateway.engine import CostRow, EnergyStats, ExplicitJob, MachineReadings, compute_machine
from gateway.ledger.rows import from_cost_row
from gateway.ledger.units import money

CASES = Path(__file__).parent.parent / "cases"


def _ms(text: str) -> int:
    """ISO 8601 with offset or Z -> UTC ms."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Case:
    """A loaded case folder."""

    name: str
    config: ShopConfig
    readings: dict[str, MachineReadings]
    jobs: dict[str, list[ExplicitJob]]  # only machines named in jobs.csv
    expected: dict[str, Any]


def load_case(folder: Path) -> Case:
    """Read one case folder."""
    cfg = load_config(folder / "shop.toml")
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for row in _rows(folder / "readings.csv"):
        counter = row.get("wh") or "nan"  # the wh column is optional, and empty = no counter
        series[row["machine"]].append((_ms(row["time"]), float(row["watts"]), float(counter)))
    readings = {}
    for machine, values in series.items():
        t, w, wh = zip(*sorted(values), strict=True)
        readings[machine] = MachineReadings(
            np.array(t, dtype=np.int64), np.array(w), np.array(wh, dtype=np.float64)
        )
    jobs: dict[str, list[ExplicitJob]] = defaultdict(list)
    if (folder / "jobs.csv").exists():
        for row in _rows(folder / "jobs.csv"):
            jobs[row["machine"]].append(
                ExplicitJob(
                    row["job_id"], _ms(row["start"]), _ms(row["end"]), row.get("customer") or ""
                )
            )
    expected = json.loads((folder / "expected.json").read_text())
    return Case(folder.name, cfg, readings, dict(jobs), expected)


def run_case(case: Case) -> tuple[list[CostRow], dict[str, EnergyStats]]:
    """The engine over every machine of the case, in config order."""
    rows: list[CostRow] = []
    stats = {}
    empty = MachineReadings(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    for machine in case.config.machine:
        result = compute_machine(
            machine.id,
            case.readings.get(machine.id, empty),
            machine,
            case.config.tariff,
            case.config.site.tz,
            case.jobs.get(machine.id),
        )
        rows += result.rows
        stats[machine.id] = result.stats
    return rows, stats


def column_names(tariff: Tariff) -> list[str]:
    """expected.json's names of the priced columns: '<version id>/<band>'."""
    return [f"{tariff.version_ids[k]}/{band}" for k, band in tariff.columns]


def row_as_dict(row: CostRow, case: Case) -> dict[str, Any]:
    """A row in expected.json's terms: local ISO times, energy per band name."""
    tz = case.config.site.tz

    def local(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz).isoformat()

    # The machine-hour costs as the ledger prices them: the printed hours x the rate.
    tariff = case.config.tariff
    amounts = from_cost_row(row, tariff.band_names, tariff.rates).amounts

    return {
        "kind": row.kind,
        "job_id": row.job_id,
        "machine": row.machine,
        "customer": row.customer,
        "start": local(row.start_ms),
        "end": local(row.end_ms),
        "day": row.day.isoformat(),
        "run_s": row.run_s,
        "wh": dict(zip(case.config.tariff.band_names, row.band_wh, strict=True)),
        "priced_wh": dict(zip(column_names(case.config.tariff), row.priced_wh, strict=True)),
        "depreciation_cost": float(money(amounts.depreciation_cents)),
        "maintenance_cost": float(money(amounts.maintenance_cents)),
        "open": row.open,
    }


def mismatches(actual: Any, expected: Any, where: str = "") -> list[str]:
    """Differences between actual and expected; numbers to 1e-6 (Wh, s, money).

    Every key written in expected.json is checked; a band missing from a "wh" dict
    must be 0.
    """
    if isinstance(expected, dict):
        out = []
        keys = set(expected) | (set(actual) if where.endswith(".wh") else set())
        for key in sorted(keys):
            out += mismatches(actual.get(key, None), expected.get(key, 0.0), f"{where}.{key}")
        return out
    if isinstance(expected, bool | str):
        return [] if actual == expected else [f"{where}: {actual!r} != expected {expected!r}"]
    if isinstance(expected, int | float):
        if isinstance(actual, int | float) and math.isclose(actual, expected, abs_tol=1e-6):
            return []
        return [f"{where}: {actual!r} != expected {expected!r}"]
    raise TypeError(f"{where}: unsupported value {expected!r} in expected.json")
