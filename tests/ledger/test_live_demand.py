"""The live peak so far (PeakWatch): the month's highest 15-minute average up to a reading,
on the hand-computed case tests/cases/demand_peak (its README has the quarter hours)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gateway.config import load_config
from gateway.engine.localtime import local_date
from gateway.ledger import Ledger
from gateway.ledger.bill import PeakWatch
from tests.ledger.shop import TZ, replay_case

CASE = Path(__file__).resolve().parents[1] / "cases" / "demand_peak"


def _ms(local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=TZ).timestamp() * 1000)


def _hhmm(t_ms: int | None) -> str:
    return "-" if t_ms is None else datetime.fromtimestamp(t_ms / 1000, TZ).strftime("%H:%M")


def _replayed(tmp_path: Path) -> Ledger:
    return Ledger(load_config(replay_case(CASE, tmp_path)))


def test_the_peak_so_far_grows_with_the_month_and_ends_at_the_bills_peak(tmp_path: Path) -> None:
    ledger = _replayed(tmp_path)
    watch = PeakWatch(ledger.cfg)
    times = ["10:15", "10:30", "10:40", "11:00"]
    seen = [ledger.demand(watch, _ms(f"2026-11-10T{t}")) for t in times]

    # 10:00-10:15 (1750 Wh, 7 kW) is the peak until 10:15-10:30 (2000 Wh, 8 kW) is done.
    assert [(_hhmm(d.peak_start_ms), str(d.peak_kw)) for d in seen] == [
        ("10:00", "7.000"),
        ("10:15", "8.000"),
        ("10:15", "8.000"),
        ("10:15", "8.000"),
    ]
    # The 15 minutes up to 10:40: mill 333.333 + 333.333 Wh, laser 333.333 + 166.667 Wh.
    assert [str(d.running_kw) for d in seen] == ["7.000", "8.000", "4.667", "0.000"]
    assert [d.warns(0.9) for d in seen] == [True, True, False, False]
    # Updating batch by batch ends where reading the month at once does, and at the bill.
    # (Sums over other spans differ in the last bit: the figures are compared as printed.)
    at_once = ledger.demand(PeakWatch(ledger.cfg), _ms("2026-11-10T11:00"))
    assert (at_once.peak_start_ms, at_once.peak_kw) == (seen[-1].peak_start_ms, seen[-1].peak_kw)
    bill = ledger.bill("2026-11")
    assert (bill.peak_start_ms, bill.peak_kw) == (seen[-1].peak_start_ms, seen[-1].peak_kw)


def test_a_new_month_starts_without_a_peak(tmp_path: Path) -> None:
    ledger = _replayed(tmp_path)
    watch = PeakWatch(ledger.cfg)
    ledger.demand(watch, _ms("2026-11-10T11:00"))
    december = ledger.demand(watch, _ms("2026-12-01T00:30"))
    assert local_date(december.at_ms, TZ).month == 12
    assert (december.peak_start_ms, str(december.peak_kw)) == (None, "0.000")
