"""What the pages read from the ledger, without a browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.serviceshop import T0, write_config
from gateway.config import load_config
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger
from gateway.web import views


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
