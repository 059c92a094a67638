"""The quarter hours the ledger keeps with its rows give the month page the same demand
peak, charge and shares as `shopwatt bill`, which reads a month of readings."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from agent.shopday import DEMO_DAY, simulate_shop_day
from gateway.cli import replay_files
from gateway.config import load_config
from gateway.engine.demand import NO_DATA
from gateway.engine.localtime import period_dates
from gateway.engine.model import MachineReadings
from gateway.engine.states import IDLE, RUNNING
from gateway.ledger import Ledger
from gateway.ledger.bill import Bill
from tests.ledger.shop import ledger_path, local_ms, ok, series, write_readings, write_shop

NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)
# The mill runs a job across midnight and two by day; an EM24's 0.1 kWh counter steps
# stay flat for hours while it idles, across the midnights.
MILL = series(
    "mill",
    "2026-11-02 06:00",
    "2026-11-04 20:00",
    [
        ("2026-11-02 22:00", "2026-11-03 02:00", 3000.0),
        ("2026-11-03 10:00", "2026-11-03 11:00", 4200.0),
        ("2026-11-04 14:05", "2026-11-04 14:50", 2500.0),
    ],
    idle_w=50.0,
)
LATHE = series(
    "lathe",
    "2026-11-03 08:00",
    "2026-11-03 12:00",
    [("2026-11-03 10:16", "2026-11-03 10:29", 2000.0)],
)


def _shop(folder: Path, coarse: bool = False) -> Path:
    config = write_shop(folder)
    text = config.read_text().replace('id = "tou"\n', 'id = "tou"\ndemand_per_kw = 9.5\n', 1)
    if coarse:
        text = text.replace("rated_w = 5000\n", "rated_w = 5000\ncounter_resolution_wh = 100\n", 1)
    config.write_text(text)
    return config


def _mill(coarse: bool) -> list[str]:
    mill = replace(MILL, wh=np.floor(MILL.wh / 100.0) * 100.0) if coarse else MILL
    return [*mill.lines(), *LATHE.lines()]


def _figures(bill: Bill) -> tuple[object, ...]:
    """What the month page shows of the bill (a share's Wh is printed to the Wh)."""
    shares = [
        (s.machine, s.job_id, s.customer, round(s.wh, 3), s.cents, s.row) for s in bill.shares
    ]
    return bill.peak_start_ms, bill.peak_kw, bill.demand_cents, shares, bill.charges


def _kept_equals_read(config: Path, period: str = "2026-11") -> Bill:
    ledger = Ledger(load_config(config))
    kept = ledger.kept_quarters(*period_dates(period))
    assert set(kept) == set(ledger.cfg.machines)  # every machine's days kept: no readings read
    read = ledger.bill(period)
    assert read.peak_start_ms is not None and read.shares
    assert _figures(ledger.bill(period, kept=kept)) == _figures(read)
    return read


def test_the_demo_months_peak_from_kept_quarter_hours_equals_the_bill(tmp_path: Path) -> None:
    shop = simulate_shop_day(7)
    config = tmp_path / "shop.toml"
    config.write_text(shop.config_toml)
    shop.readings_csv(tmp_path / "readings.csv")
    shop.jobs_csv(tmp_path / "jobs.csv")
    cfg = load_config(config)
    replay_files(cfg, tmp_path / "readings.csv", tmp_path / "jobs.csv", create_customers=True)
    bill = _kept_equals_read(config, f"{DEMO_DAY:%Y-%m}")
    assert bill.demand_cents > 0 and len({s.machine for s in bill.shares}) > 3


@pytest.mark.parametrize("coarse", [False, True], ids=["counter", "coarse-counter"])
def test_kept_quarter_hours_of_a_replay_in_pieces_give_the_bills_peak(
    tmp_path: Path, coarse: bool
) -> None:
    config = _shop(tmp_path, coarse)
    lines = _mill(coarse)
    cut = sorted(lines)  # out of order pieces, each recomputing the days around it
    for k, piece in enumerate((cut[1500:], cut[:700], cut[700:1500])):
        path = write_readings(tmp_path / f"part{k}.csv", piece)
        ok("replay", "--config", config, "--input", path)
    bill = _kept_equals_read(config)
    # The job on the 3rd from 10:00 made the peak: the mill at 4.2 kW with the lathe's job.
    assert bill.peak_start_ms == local_ms("2026-11-03 10:15")
    assert {s.job_id for s in bill.shares if s.job_id} == {
        "mill-20261103-001",
        "lathe-20261103-001",
    }


def test_live_batches_keep_the_quarter_hours_of_one_replay(tmp_path: Path) -> None:
    live, whole = _shop(tmp_path / "live"), _shop(tmp_path / "whole")
    ok("replay", "--config", whole, "--input", write_readings(tmp_path / "all.csv", _mill(False)))
    ledger = Ledger(load_config(live))
    for s in (MILL, LATHE):  # ten-minute batches, as `shopwatt run` commits them
        for k in range(0, len(s.t_ms), 10):
            part = MachineReadings(s.t_ms[k : k + 10], s.watts[k : k + 10], s.wh[k : k + 10])
            ledger.ingest({s.machine: part}, "test")
    _kept_equals_read(live)
    got, want = ledger.kept_quarters(NOV, DEC), Ledger(load_config(whole)).kept_quarters(NOV, DEC)
    for machine, (wh, states) in want.items():
        np.testing.assert_allclose(got[machine][0], wh, atol=1e-6)
        np.testing.assert_array_equal(got[machine][1], states)


def test_kept_states_show_each_quarter_hour_idle_running_or_without_readings(
    tmp_path: Path,
) -> None:
    config = _shop(tmp_path)
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "r.csv", _mill(False)))
    wh, states = Ledger(load_config(config)).kept_quarters(NOV, DEC)["lathe"]
    day = 2 * 96  # the 3rd's quarter hours (no DST change in early November)
    want = [NO_DATA] * 32 + [IDLE] * 9 + [RUNNING] + [IDLE] * 6 + [NO_DATA] * 48
    assert states[day : day + 96].tolist() == want  # 08:00-12:00; 10:16-10:29 running
    assert wh.sum() == pytest.approx(LATHE.wh[-1] - LATHE.wh[0])  # every Wh in one quarter hour


def test_an_older_ledgers_days_are_read_from_readings_then_kept_at_the_web_pages_start(
    tmp_path: Path,
) -> None:
    config = _shop(tmp_path)
    ok("replay", "--config", config, "--input", write_readings(tmp_path / "r.csv", _mill(False)))
    with sqlite3.connect(ledger_path(config)) as conn:  # as before the quarters table
        conn.execute("DELETE FROM quarters WHERE machine = 'mill'")
    ledger = Ledger(load_config(config))
    kept = ledger.kept_quarters(NOV, DEC)
    assert set(kept) == {"lathe"}  # the mill's figures come from its readings
    assert _figures(ledger.bill("2026-11", kept=kept)) == _figures(ledger.bill("2026-11"))
    assert ledger.keep_quarters() == 3  # the mill's three days, as `shopwatt web` starts
    _kept_equals_read(config)
    assert ledger.keep_quarters() == 0
