"""Ledger.ingest (the service's way into the ledger) and the lines publish.py makes."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agent.readingsfile import write_readings_csv
from agent.serviceshop import T0, config, ledger_readings, write_config
from gateway.cli import main
from gateway.config import ShopConfig
from gateway.engine.live import LiveView, minute_energy
from gateway.engine.model import MachineReadings
from gateway.inputs.csvfile import ReadingsCsv
from gateway.ledger import Ledger
from gateway.ledger.live import LiveState
from gateway.ledger.rows import LedgerRow
from gateway.outputs import publish
from gateway.outputs.publish import machine_lines
from gateway.service import Service
from tests.ledger.shop import drop_billing_step
from tests.servers import Influxd, Mosquitto

DAY = (date(2026, 11, 3), date(2026, 11, 4))


def _shop(folder: Path) -> ShopConfig:
    folder.mkdir(parents=True, exist_ok=True)
    return config(write_config(folder, None, sensors={"mill": "s1"}))


def _day_of_readings() -> MachineReadings:
    """Ten hours at 10 s: idle, with a run of 20 minutes every hour; counter exact."""
    t = T0 + np.arange(3600, dtype=np.int64) * 10_000
    watts = np.where((np.arange(3600) % 360) < 120, 1800.0, 45.0)
    wh = np.concatenate([[0.0], np.cumsum(watts[1:] * 10 / 3600)])
    return MachineReadings(t, watts, wh)


def _piece(r: MachineReadings, a: int, b: int) -> MachineReadings:
    return MachineReadings(r.t_ms[a:b], r.watts[a:b], r.wh[a:b])


def _rows(cfg: ShopConfig) -> list[tuple[object, ...]]:
    return [
        (r.kind, r.job_id, r.start_ms, r.end_ms, r.amounts) for r in Ledger(cfg).select(*DAY).rows
    ]


def test_batches_ingested_live_give_the_rows_of_one_replay(tmp_path: Path) -> None:
    r = _day_of_readings()
    live = _shop(tmp_path / "live")
    for a in range(0, len(r), 97):  # batches that cut jobs anywhere
        Ledger(live).ingest({"mill": _piece(r, a, a + 97)}, "test")
    replayed = _shop(tmp_path / "replay")
    csv = tmp_path / "readings.csv"
    write_readings_csv(csv, {"mill": r})
    Ledger(replayed).replay(ReadingsCsv(csv, replayed.machines))
    assert _rows(live) == _rows(replayed)
    assert len([row for row in _rows(live) if row[0] == "job"]) == 10


def test_rows_follow_when_the_deferred_range_is_recomputed(tmp_path: Path) -> None:
    cfg = _shop(tmp_path)
    r = _day_of_readings()
    ranges = {}
    for a in range(0, len(r), 500):
        done = Ledger(cfg).ingest({"mill": _piece(r, a, a + 500)}, "test", recompute={})
        assert done.rows == []  # stored, not costed yet
        lo, hi = done.added_ranges["mill"]
        ranges["mill"] = (min(lo, ranges.get("mill", (lo, hi))[0]), hi)
    assert ledger_readings(cfg) == {"mill": len(r)}
    costed = Ledger(cfg).ingest({}, "test", recompute=ranges)
    assert sum(row.amounts.energy_wh for row in costed.rows) == pytest.approx(r.wh[-1] - r.wh[0])


def test_a_site_meters_readings_are_stored_never_costed(tmp_path: Path) -> None:
    grid = '[[site_meter]]\nid = "grid"\nrole = "grid"\nrated_w = 20000\n'
    cfg = config(write_config(tmp_path, None, sensors={"mill": "s1"}, meters=grid))
    r = _day_of_readings()
    done = Ledger(cfg).ingest({"mill": _piece(r, 0, 500), "grid": _piece(r, 0, 500)}, "test")
    assert set(done.added_ranges) == {"mill"}
    assert {row.machine for row in done.rows} == {"mill"}
    assert ledger_readings(cfg) == {"mill": 500, "grid": 500}


def test_state_that_fails_to_save_takes_the_readings_with_it(tmp_path: Path) -> None:
    cfg = _shop(tmp_path)
    Ledger(cfg).ingest({}, "test")  # the ledger exists, empty
    with closing(sqlite3.connect(Ledger(cfg).path)) as conn:  # a write that fails mid-batch
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON sensor_state "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    state = LiveState(sensors=[("s1", "{}")])
    with pytest.raises(sqlite3.IntegrityError):
        Ledger(cfg).ingest({"mill": _piece(_day_of_readings(), 0, 10)}, "test", state=state)
    assert ledger_readings(cfg) == {}  # all or nothing: the broker will redeliver them


def test_a_ledger_of_schema_1_gets_the_service_state_tables_with_their_content(
    tmp_path: Path,
) -> None:
    cfg = _shop(tmp_path)
    Ledger(cfg).ingest({"mill": _piece(_day_of_readings(), 0, 10)}, "test")
    with closing(sqlite3.connect(Ledger(cfg).path)) as conn, conn:
        # What a ledger written before version 2 holds: the service's own tables, its rows.
        for table in ("sensor_state", "machine_view", "pending_recompute", "live_jobs"):
            conn.execute(f"DROP TABLE {table}")
        drop_billing_step(conn)  # ... and nothing of the later steps: billing, members
        for table in ("members", "blocks", "subscriptions", "prepaid_frozen"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("CREATE TABLE machine_view (machine TEXT PRIMARY KEY, view TEXT NOT NULL)")
        conn.execute("""INSERT INTO machine_view VALUES ('mill', '[[5, 45.0, 1.5], 0, [1.5]]')""")
        conn.execute("PRAGMA user_version = 1")
    state = Ledger(cfg).live_state()
    # Saved before the minute's cost was carried: that part of the minute costs nothing.
    assert state.views == {"mill": LiveView((5, 45.0, 1.5), 0, (1.5,), (0.0,))}
    assert state.pending == {} and ledger_readings(cfg) == {"mill": 10}


def test_energy_per_minute_adds_up_and_batches_write_whole_minutes(tmp_path: Path) -> None:
    cfg = _shop(tmp_path)
    mill = cfg.machines["mill"]
    r = _piece(_day_of_readings(), 0, 100)
    minutes, band_wh, _ = minute_energy(mill, cfg.tariff, cfg.site.tz, r, {})
    assert band_wh.sum() == pytest.approx(r.wh[-1] - r.wh[0])
    assert np.all(np.diff(minutes) == 60_000)
    # Two batches cut inside a minute write that minute again, whole: the last value wins.
    lines, view = machine_lines(cfg, mill, _piece(r, 0, 33), LiveView(), Ledger(cfg).price_slots)
    lines += machine_lines(cfg, mill, _piece(r, 33, 100), view, Ledger(cfg).price_slots)[0]
    energy: dict[str, str] = {}
    for line in lines:
        if line.startswith("energy,"):
            energy[line.split(" ")[0] + line.rsplit(" ", 1)[1]] = line
    total = sum(float(v.split("kwh=")[1].split(",")[0]) for v in energy.values())
    assert total * 1000 == pytest.approx(r.wh[-1] - r.wh[0])


def test_a_batch_after_a_reading_without_power_keeps_its_first_state_point(
    tmp_path: Path,
) -> None:
    cfg = _shop(tmp_path)
    mill = cfg.machines["mill"]
    r = _piece(_day_of_readings(), 0, 4)
    no_power = MachineReadings(r.t_ms[:1], np.array([np.nan]), r.wh[:1])
    _, view = machine_lines(cfg, mill, no_power, LiveView(), Ledger(cfg).price_slots)
    lines, _ = machine_lines(cfg, mill, _piece(r, 1, 4), view, Ledger(cfg).price_slots)
    states = [text for text in lines if text.startswith("machine_state,")]
    assert states[0].endswith(f" {r.t_ms[1]}")  # the carried reading had no point to skip


def test_replay_and_recompute_send_their_changes_to_influxdb(
    tmp_path: Path, influxd: Influxd, influx_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "HISTORY_CHUNK", 97)  # chunk edges inside jobs and minutes
    path = write_config(tmp_path, None, influxd, influx_db, sensors={"mill": "s1"})
    csv = tmp_path / "readings.csv"
    r = _day_of_readings()
    write_readings_csv(csv, {"mill": r})
    runner = CliRunner()
    done = runner.invoke(main, ["replay", "--config", str(path), "--input", str(csv)])
    assert done.exit_code == 0, done.output
    assert "InfluxDB: queued" in done.output and "all sent" in done.output
    count = influxd.rows('SELECT count("watts") FROM "power"', influx_db)
    assert count[0]["count"] == len(r)
    q = 'SELECT "job_id", "energy_cost", "kwh_standard" FROM "job"'
    jobs = influxd.rows(q, influx_db)
    assert len(jobs) == 10
    energy = influxd.rows('SELECT sum("kwh") FROM "energy"', influx_db)
    assert energy[0]["sum"] * 1000 == pytest.approx(r.wh[-1] - r.wh[0])
    # A new tariff: recompute rewrites the costs of the jobs it recomputed.
    path.write_text(path.read_text().replace("rate = 0.25", "rate = 0.50"))
    done = runner.invoke(main, ["recompute", "--config", str(path)])
    assert done.exit_code == 0, done.output
    before = {j["job_id"]: j for j in jobs}
    again = {j["job_id"]: j for j in influxd.rows(q, influx_db)}
    assert set(again) == set(before)
    for job_id, j in again.items():  # the standard band's kWh now cost 0.25 more each
        extra = before[job_id]["kwh_standard"] * 0.25
        assert j["energy_cost"] == pytest.approx(before[job_id]["energy_cost"] + extra, abs=0.011)


def test_the_service_writes_the_members_balances_with_its_health_points(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, mosquitto, influxd, influx_db, sensors={"mill": "s1"})
    runner = CliRunner()
    for args in (
        ["member", "add", "ada", "--weight", "mill=2", "--low-below", "5"],
        ["member", "topup", "ada", "--hours", "3", "--price", "90", "--date", "2026-11-01"],
    ):
        done = runner.invoke(main, [*args, "--config", str(path)])
        assert done.exit_code == 0, done.output
    service = Service(config(path))  # not started: no broker connection is needed here
    assert service.outbox is not None and service.drainer is not None
    try:
        service.write_health()
        service.flush()  # health points go into the outbox with the next batch
        while service.outbox.depth:
            assert service.drainer.drain_once() == 0.0
    finally:
        service.drainer.stop()
        service.outbox.close()
    found = influxd.rows('SELECT "balance_credits", "low", "member" FROM "member"', influx_db)
    # Nothing drawn yet: 3 credits, below the low mark of 5.
    assert [(r["member"], r["balance_credits"], r["low"]) for r in found] == [("ada", 3.0, True)]


def test_what_runs_before_the_commit_sees_the_rows_and_failing_stores_nothing(
    tmp_path: Path,
) -> None:
    # The service puts a batch's lines into the outbox between the ledger's work and its
    # commit (docs/gateway.md): the hook gets the recomputed rows, and if it fails (the
    # outbox's disk is full), the ledger keeps nothing of the batch.
    cfg = _shop(tmp_path)
    r = _day_of_readings()
    seen: list[int] = []

    def fail(rows: list[LedgerRow]) -> None:
        seen.append(len(rows))
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        Ledger(cfg).ingest({"mill": _piece(r, 0, 360)}, "test", before_commit=fail)
    assert seen and seen[0] > 0
    assert ledger_readings(cfg) == {}
    got: list[object] = []
    done = Ledger(cfg).ingest({"mill": _piece(r, 0, 360)}, "test", before_commit=got.extend)
    assert got == done.rows and ledger_readings(cfg) == {"mill": 360}
