"""Every query shown in docs/influxdb.md runs on real InfluxDB data the schema produced."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gateway.config import Band, Machine, MachineCost, Tariff
from gateway.engine.model import CostRow
from gateway.ledger.rows import from_cost_row
from gateway.outputs.drain import DrainStats
from gateway.outputs.outbox import OutboxHealth
from gateway.outputs.schema import (
    cost_lines,
    energy_lines,
    gateway_line,
    power_lines,
    state_lines,
)
from tests.servers import Influxd

DOC = Path(__file__).resolve().parents[2] / "docs" / "influxdb.md"
TARIFF = Tariff(id="t", rate=0.25, band=[Band(name="peak", rate=0.4, start="08:00", end="12:00")])


def _doc_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    statements = "\n".join(
        line for block in blocks for line in block.splitlines() if not line.startswith("--")
    )
    return [q.strip() for q in re.split(r"\n(?=SELECT)", statements) if q.strip()]


def _shop_hour(now_ms: int) -> list[str]:
    """An hour of one machine as the gateway writes it, ending now."""
    machine = Machine(
        id="cnc-01",
        off_below_w=60,
        run_above_w=900,
        rated_w=15000,
        cost=MachineCost(purchase=100, life_hours=10),
    )
    t = now_ms - 3_600_000 + np.arange(360, dtype=np.int64) * 10_000
    watts = np.where(np.arange(360) % 120 < 60, 2000.0, 100.0)
    wh = np.cumsum(watts) * 10 / 3600
    minutes = t[::6]
    band_wh = np.column_stack([wh[5::6] - wh[::6], np.zeros(len(minutes))])
    job = CostRow(
        "job",
        "J-1",
        "cnc-01",
        "ACME",
        now_ms - 600_000,
        now_ms - 1000,
        date.today(),
        500.0,
        (300.0, 0.0),
        1.0,
        0.1,
    )
    health = OutboxHealth(0, 0, 100, 0.0, False, 0, 0, 0, 0).fields() | DrainStats().fields()
    return [
        *power_lines("northside", "cnc-01", "ct-1", t, watts, wh),
        *state_lines("northside", machine, t, watts),
        *energy_lines("northside", "cnc-01", minutes, band_wh, band_wh * 0.00025, TARIFF),
        *cost_lines(
            "northside",
            [
                from_cost_row(j, TARIFF.band_names, TARIFF.rates)
                for j in (job, replace(job, job_id="J-0", end_ms=now_ms - 900_000))
            ],
            TARIFF.band_names,
        ),
        gateway_line("northside", now_ms, health) or "",
    ]


@pytest.mark.parametrize("query", _doc_queries())
def test_documented_query_returns_rows(influxd: Influxd, influx_db: str, query: str) -> None:
    now_ms = time.time_ns() // 1_000_000
    influxd.write(_shop_hour(now_ms), influx_db)
    q = query.replace("$timeFilter", "time > now() - 2h").replace("$__interval", "1m")
    series = influxd.query(q, influx_db)[0].get("series", [])
    assert series and any(
        any(v is not None for v in row[1:]) for s in series for row in s["values"]
    )
