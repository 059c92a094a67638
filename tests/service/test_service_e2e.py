"""`shopwatt run` end to end: mosquitto_pub -> broker -> gateway -> ledger and InfluxDB."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agent.serviceshop import (
    SITE,
    FakeSensor,
    Gateway,
    config,
    job_event,
    ledger_readings,
    mosquitto_pub,
    wait_for,
    write_config,
)
from gateway.config import ShopConfig
from gateway.ledger import Ledger
from tests.servers import Influxd, Mosquitto

# Idle at 45 W, a 5-minute job at 1800 W, idle again: one detected job.
PROFILE = [45] * 6 + [1800] * 31 + [45] * 20


def test_readings_published_with_mosquitto_pub_become_jobs_costs_and_points(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1", "lathe": "s2"})
    cfg = config(path)
    mill, lathe = FakeSensor("mill", "s1"), FakeSensor("lathe", "s2")
    job_start = lathe.t_ms + 30_000
    with Gateway(path) as gw:
        mosquitto_pub(broker, mill.topic, [mill.reading(w) for w in PROFILE])
        wait_for(
            "the mill's readings", lambda: ledger_readings(cfg).get("mill") == len(PROFILE), gw
        )
        # The lathe's job comes from its operator button, not from detection.
        start = job_event("lathe", "start", "J-1042", job_start, customer="ACME GmbH")
        mosquitto_pub(broker, start[0], [start[1]])
        mosquitto_pub(broker, lathe.topic, [lathe.reading(w) for w in [45] * 6 + [900] * 12])
        wait_for("the lathe's readings", lambda: ledger_readings(cfg).get("lathe") == 18, gw)
        opened = wait_for("the open job", lambda: _open_jobs(cfg).get("lathe"), gw)
        assert opened == 1  # the lathe's job runs: visible as open in the ledger
        stop_t = lathe.t_ms - 20_000
        stop = job_event("lathe", "stop", "J-1042", stop_t, parts=12)
        mosquitto_pub(broker, stop[0], [stop[1]])
        mosquitto_pub(broker, lathe.topic, [lathe.reading(45) for _ in range(6)])
        wait_for("the lathe's last readings", lambda: ledger_readings(cfg).get("lathe") == 24, gw)
        assert gw.stop() == 0

    status = {m.machine: m for m in Ledger(cfg).status(0).machines}
    assert status["mill"].metered_wh == pytest.approx(mill.truth_wh)
    assert status["lathe"].metered_wh == pytest.approx(lathe.truth_wh)
    assert status["lathe"].open_jobs == 0
    rows = Ledger(cfg).select(date(2026, 11, 3), date(2026, 11, 4)).rows
    jobs = {r.job_id: r for r in rows if r.kind == "job"}
    assert set(jobs) == {"mill-20261103-001", "J-1042"}
    # The mill ran 31 readings at 1800 W: 30 intervals of 10 s, 15 Wh each.
    assert jobs["mill-20261103-001"].amounts.energy_wh == pytest.approx(30 * 5.0)
    assert jobs["mill-20261103-001"].amounts.run_s == pytest.approx(300.0)
    # 0.15 kWh x 0.25 = 4 cents; 300 s at 1.00/h depreciation = 8; at 0.50/h maintenance = 4.
    assert jobs["mill-20261103-001"].amounts.total_cents == 4 + 8 + 4
    assert jobs["J-1042"].customer == "ACME GmbH"
    assert (jobs["J-1042"].start_ms, jobs["J-1042"].end_ms) == (job_start, stop_t)

    def points(q: str) -> list[dict[str, object]]:
        return influxd.rows(q, influx_db)

    count = wait_for(
        "power points in InfluxDB",
        lambda: (
            (p := points('SELECT count("watts") FROM "power" GROUP BY "sensor"'))
            and len(p) == 2
            and p
        ),
    )
    assert {c["sensor"]: c["count"] for c in count} == {"s1": len(PROFILE), "s2": 24}
    job_points = points('SELECT "job_id", "energy_kwh", "total_cost" FROM "job"')
    assert {p["job_id"] for p in job_points} == {"mill-20261103-001", "J-1042"}
    energy = points('SELECT sum("kwh") FROM "energy" GROUP BY "machine"')
    assert {e["machine"]: e["sum"] * 1000 for e in energy} == pytest.approx(
        {"mill": mill.truth_wh, "lathe": lathe.truth_wh}
    )
    health = points(f'SELECT last("readings_in") FROM "gateway" WHERE "site" = \'{SITE}\'')
    assert health[0]["last"] == len(PROFILE) + 24


def _open_jobs(cfg: ShopConfig) -> dict[str, int]:
    return {m.machine: m.open_jobs for m in Ledger(cfg).status(0).machines}
