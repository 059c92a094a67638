"""A coarse counter (0.1 kWh steps) in the ledger: partial runs equal one full run.

The engine shares each counter step with the readings since the counter last moved, which
may be hours back and on the day before: the ledger's windows must reach that far.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gateway.config import load_config
from gateway.ledger import Ledger
from tests.ledger.shop import dump, series, shopwatt, write_readings, write_shop

# Idle at 50 W most of the time: an EM24's 100 Wh step takes two hours, so flat runs cross
# the midnights; a job runs across the first one.
_MILL = series(
    "mill",
    "2026-11-02 00:00",
    "2026-11-04 23:59",
    [("2026-11-02 22:00", "2026-11-03 02:00", 3000.0)],
    idle_w=50.0,
)
MILL = replace(_MILL, wh=np.floor(_MILL.wh / 100.0) * 100.0)


def _coarse_shop(folder: Path) -> Path:
    config = write_shop(folder)
    text = config.read_text().replace(
        "rated_w = 5000\n", "rated_w = 5000\ncounter_resolution_wh = 100\n", 1
    )
    config.write_text(text)
    return config


def _replay(config: Path, name: str, lines: list[str]) -> None:
    result = shopwatt(
        "replay", "--config", config, "--input", write_readings(config.parent / name, lines)
    )
    assert result.exit_code == 0, result.output


def test_a_coarse_counter_replayed_in_pieces_equals_one_replay(tmp_path: Path) -> None:
    whole, pieces = _coarse_shop(tmp_path / "whole"), _coarse_shop(tmp_path / "pieces")
    _replay(whole, "all.csv", MILL.lines())
    _replay(pieces, "a.csv", MILL.lines(hi="2026-11-03 00:30"))
    _replay(pieces, "b.csv", MILL.lines(lo="2026-11-03 06:00"))
    _replay(pieces, "c.csv", MILL.lines(lo="2026-11-03 00:30", hi="2026-11-03 06:00"))
    for table in ("rows", "day_stats"):
        assert dump(pieces, table) == dump(whole, table), table
    rows = Ledger(load_config(whole)).select(date(2026, 11, 2), date(2026, 11, 5)).rows
    # The hour after the last step is still flat: the counter has not told it yet.
    assert sum(r.amounts.energy_wh for r in rows) == pytest.approx(MILL.wh[-1] - MILL.wh[0])
