"""What the pages read from the ledger, without a browser."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import numpy as np

from agent.serviceshop import T0, write_config
from gateway.config import load_config
from gateway.engine.model import ExplicitJob, MachineReadings
from gateway.ledger import Ledger
from gateway.ledger.live import JobRow, LiveState
from gateway.web import views
from gateway.web.render import month_pictures


def _readings(first_ms: int, watts: float, n: int = 60) -> MachineReadings:
    t = first_ms + np.arange(n, dtype=np.int64) * 10_000
    return MachineReadings(t, np.full(n, watts), np.full(n, np.nan))


def test_the_floor_follows_new_readings_of_a_replayed_ledger(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    ledger.ingest({"mill": _readings(T0, 900.0)}, "test")
    remembered: views.Newest = {}
    (tile,) = views.floor(cfg, ledger, T0 + 600_000, remembered)
    assert (tile.state, tile.watts) == ("running", 900.0)
    ledger.ingest({"mill": _readings(T0 + 600_000, 90.0)}, "test")
    # A newer reading: not the remembered one.
    (tile,) = views.floor(cfg, ledger, T0 + 1_200_000, remembered)
    assert (tile.state, tile.watts) == ("idle", 90.0)
    assert tile.seen.endswith(":19:50")  # T0 is 09:00 local; the newest reading 09:19:50


def test_a_machine_whose_sensor_went_silent_is_offline_not_running(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    ledger.ingest({"mill": _readings(T0, 900.0)}, "test")  # the newest at T0 + 590 s
    silent = int(2_000 * cfg.machines["mill"].max_gap_s)  # as long as Health still says online
    (tile,) = views.floor(cfg, ledger, T0 + 590_000 + silent - 1)
    assert tile.state == "running"
    (tile,) = views.floor(cfg, ledger, T0 + 590_000 + silent)
    # Its last power stays on the tile with its time, but it is no state of now.
    assert (tile.state, tile.watts, tile.seen[-8:]) == ("offline", 900.0, "09:09:50")


def test_a_job_the_gateway_has_stopped_leaves_the_floor_before_its_row_is_final(
    tmp_path: Path,
) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    start, stop = T0 + 60_000, T0 + 1_200_000  # stopped after the newest reading (T0 + 590 s)
    running = ExplicitJob("WO-1", start, stop, "acme")
    book: JobRow = ("mill", "WO-1", start, None, "acme", None, "web:otto", "")
    ledger.ingest(
        {"mill": _readings(T0, 900.0)}, "test", {"mill": [[running]]}, LiveState(jobs=[book])
    )
    (tile,) = views.floor(cfg, ledger, T0 + 600_000)
    assert (tile.job, tile.customer, tile.detected) == ("WO-1", "acme", False)
    # The stop is in the job book; the row stays open until readings pass it (a sensor
    # offline), but the operator must not see a Stop button for a job already stopped.
    stopped: JobRow = ("mill", "WO-1", start, stop, "acme", 3, "web:otto", "")
    ledger.ingest({}, "test", None, LiveState(jobs=[stopped]))
    with closing(sqlite3.connect(ledger.path)) as conn:
        assert conn.execute("SELECT job_id, open FROM rows WHERE kind = 'job'").fetchall() == [
            ("WO-1", 1)
        ]
    (tile,) = views.floor(cfg, ledger, T0 + 600_000)
    assert tile.job == ""


def test_a_job_detected_from_power_is_shown_without_a_stop_it_cannot_take(
    tmp_path: Path,
) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    ledger.ingest({"mill": _readings(T0, 900.0)}, "test")  # running, no job event
    (tile,) = views.floor(cfg, ledger, T0 + 600_000)
    # The running stretch is an open job, but none the gateway's job book could stop.
    assert (tile.state, tile.job.startswith("mill-"), tile.detected) == ("running", True, True)


def test_the_month_timeline_draws_each_days_states_and_links_the_day_by_quarter_hour(
    tmp_path: Path,
) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    for day in range(3):  # idle 09:00-10:00, running 10:00-11:00, each day from T0 on
        first = T0 + day * 86_400_000
        ledger.ingest({"mill": _readings(first, 90.0, 360)}, "test")
        ledger.ingest({"mill": _readings(first + 3_600_000, 900.0, 361)}, "test")
    m = views.month(cfg, ledger, "2026-11")
    month = str(month_pictures(m, cfg, None, "/month?period=2026-11")["timeline"])
    for day in ("2026-11-03", "2026-11-04", "2026-11-05"):  # each day's strip opens the day
        assert f'href="/month?period=2026-11&amp;day={day}"' in month
    assert month.count("<title>1.0 h idle, 1.0 h running</title>") == 3
    shown = month_pictures(m, cfg, date(2026, 11, 4), "/month?period=2026-11")
    day = str(shown["timeline"])
    assert "href" not in day and shown["by_quarter"]
    # By quarter hour: one block idle 09:00-10:00, one running 10:00-11:00 (local).
    assert day.count("<title>1.0 h idle</title>") == day.count("<title>1.0 h running</title>") == 1


def test_the_month_page_of_the_last_month_there_is(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, None, sensors={"mill": "s-mill"}))
    ledger = Ledger(cfg)
    ledger.ingest({"mill": _readings(T0, 900.0)}, "test")
    m = views.month(cfg, ledger, "9999-12")  # no month after it to end it
    assert m.bill.peak_start_ms is None and not m.rows
    assert "<svg" in month_pictures(m, cfg, None, "/month?period=9999-12")["timeline"]
