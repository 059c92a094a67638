"""The live demand (every few seconds, the last half hour of every machine) holds one
machine's stored day at a time, not every machine's: late in the day a Pi would otherwise
need the whole shop's day in memory at once (88 MB with 50 machines at 1 Hz)."""

from __future__ import annotations

import tracemalloc
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent.serviceshop import write_config
from gateway.config import load_config
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger
from gateway.ledger.bill import PeakWatch
from gateway.ledger.chunks import ReadingStore
from gateway.ledger.schema import connect, transaction

MACHINES = 8
HOURS = 12  # of one-second readings per machine, all in one UTC day


def test_live_demand_holds_one_machines_day_at_a_time(tmp_path: Path) -> None:
    cfg = load_config(
        write_config(tmp_path, None, sensors={f"m{k}": f"s{k}" for k in range(MACHINES)})
    )
    start = int(datetime(2026, 11, 3, 1, tzinfo=UTC).timestamp() * 1000)
    t = start + np.arange(HOURS * 3600, dtype=np.int64) * 1000
    watts = np.full(len(t), 1500.0)
    with (
        closing(connect(cfg.storage_dir / "ledger.sqlite", create=True)) as conn,
        transaction(conn),
    ):
        for machine in cfg.machines:
            ReadingStore(conn).merge(machine, MachineReadings(t, watts, np.cumsum(watts) / 3600))
    ledger = Ledger(cfg)
    watch = PeakWatch(cfg)
    ledger.demand(watch, int(t[-2]))  # the first update reads the month so far
    tracemalloc.start()
    try:
        demand = ledger.demand(watch, int(t[-1]))  # as the service does every few seconds
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(demand.running_kw) == "12.000"  # 8 machines at 1.5 kW
    one_day = 3 * t.nbytes  # a machine's stored day: times, watts, counter
    # One machine's day and the copies made while reading it (decoded, concatenated, cut);
    # holding every machine's day took 9.4 days here.
    assert peak < 4 * one_day, f"{peak / one_day:.1f} machines' days in memory at once"
