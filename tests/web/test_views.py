"""What the pages read from the ledger, without a browser."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from agent.serviceshop import T0, write_config
from gateway.config import load_config
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger
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
    (tile,) = views.floor(cfg, ledger, remembered)
    assert (tile.state, tile.watts) == ("running", 900.0)
    ledger.ingest({"mill": _readings(T0 + 600_000, 90.0)}, "test")
    (tile,) = views.floor(cfg, ledger, remembered)  # a newer reading: not the remembered one
    assert (tile.state, tile.watts) == ("idle", 90.0)
    assert tile.seen.endswith(":19:50")  # T0 is 09:00 local; the newest reading 09:19:50


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
