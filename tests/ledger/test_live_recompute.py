"""The live recompute (Ledger.ingest every few readings) stores exactly what a full recompute
of the same readings stores, while it computes only the readings after its checkpoint."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.serviceshop import MACHINE, config, write_config
from gateway.config import ShopConfig
from gateway.engine.model import ExplicitJob, MachineReadings, PriceSlots
from gateway.ledger import Ledger, chunks

SPOT = """
[tariff.spot]
series = "day-ahead"
factor = 0.001
fallback = 0.30
"""
# Saturday 20:00 UTC to Monday 04:00 UTC: two local midnights, the autumn DST change.
START = int(datetime(2026, 10, 24, 20, 0, tzinfo=UTC).timestamp() * 1000)
HOURS = 32
STEP_MS = 15_000


def _shop(folder: Path, spot: bool) -> ShopConfig:
    """The test shop's site and tariff; a mill with a fine counter, a press with a coarse
    one (0.1 kWh steps, like a DIN-rail meter's)."""
    folder.mkdir(parents=True)
    machines = "".join(
        MACHINE.format(id=m, source="").replace(
            "rated_w = 5000\n", f"rated_w = 5000\ncounter_resolution_wh = {step}\n"
        )
        for m, step in (("mill", 0.001), ("press", 100))
    )
    return config(write_config(folder, None, meters=machines + (SPOT if spot else "")))


def _machine(rng: np.random.Generator, coarse: bool) -> MachineReadings:
    """Jobs of a few minutes to an hour, pauses shorter and longer than merge_gap_s, noisy
    power, a counter that resets once, and a 10-minute hole (a gap)."""
    n = HOURS * 3600_000 // STEP_MS
    t = START + np.arange(n, dtype=np.int64) * STEP_MS + rng.integers(0, 3000, n)
    running = np.zeros(n, dtype=bool)
    k = 0
    while k < n:
        on = int(rng.integers(4, 240))
        running[k : k + on] = True
        k += on + int(rng.choice([2, 5, 30, 120]))  # 30 s .. 30 min off
    watts = np.where(running, rng.uniform(600, 4000, n), rng.uniform(0, 400, n)).round(1)
    wh = np.cumsum(watts * STEP_MS / 3_600_000)
    if coarse:
        wh = np.floor(wh / 100.0) * 100.0  # a counter that moves in 0.1 kWh steps
    wh[n // 3 :] -= wh[n // 3]  # the counter restarts from 0 (a reboot)
    keep = np.ones(n, dtype=bool)
    keep[n // 2 : n // 2 + 40] = False  # 10 minutes without readings
    return MachineReadings(t[keep], watts[keep], wh[keep])


def _pieces(r: MachineReadings, rng: np.random.Generator) -> list[MachineReadings]:
    edges = np.cumsum(rng.integers(1, 12, len(r)))
    edges = np.concatenate([[0], edges[edges < len(r)], [len(r)]])
    return [MachineReadings(r.t_ms[a:b], r.watts[a:b], r.wh[a:b]) for a, b in pairwise(edges)]


def _stored(cfg: ShopConfig) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(cfg.storage_dir / "ledger.sqlite")) as conn:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in ("rows", "day_stats", "quarters")
        }


def _snapshot(cfg: ShopConfig, folder: Path, spot: bool) -> ShopConfig:
    """A copy of the ledger as committed now, beside a copy of shop.toml."""
    copy = _shop(folder, spot)
    copy.storage_dir.mkdir(parents=True)
    with (
        closing(sqlite3.connect(cfg.storage_dir / "ledger.sqlite")) as src,
        closing(sqlite3.connect(copy.storage_dir / "ledger.sqlite")) as dst,
    ):
        src.backup(dst)
    return copy


@pytest.mark.parametrize("spot", [False, True])
def test_live_batches_store_the_rows_and_stats_of_a_full_recompute(
    tmp_path: Path, spot: bool
) -> None:
    cfg = _shop(tmp_path / "live", spot)
    rng = np.random.default_rng(11)
    ledger = Ledger(cfg)
    if spot:  # quarter-hour prices for part of the time: the rest at the fallback
        starts = START + np.arange(0, 20 * 3600_000, 900_000, dtype=np.int64)
        slots = PriceSlots(starts, starts + 900_000, rng.uniform(50, 150, len(starts)))
        ledger.import_prices("day-ahead", slots, tmp_path / "prices.csv", "0" * 64)
    batches = {m: _pieces(_machine(rng, m == "press"), rng) for m in cfg.machines}
    # An operator's job on the mill (the job button): a day of its readings is explicit.
    job_ms = START + 20 * 3600_000
    job = ExplicitJob("order-7", job_ms, job_ms + 40 * 60_000, parts=3)
    pending: dict[str, tuple[int, int]] = {}
    snapshots = []
    sent = False
    for k in range(max(len(b) for b in batches.values())):
        batch = {m: b[k] for m, b in batches.items() if k < len(b)}
        for m, r in batch.items():
            pending[m] = (pending.get(m, (int(r.t_ms[0]), 0))[0], int(r.t_ms[-1]))
        # The job's stop comes in once its end has passed, as a job event would.
        stop = not sent and "mill" in batch and batch["mill"].t_ms[-1] > job.end_ms
        sent |= stop
        jobs = {"mill": [[job]]} if stop else None
        # Rows follow every third batch, as the service recomputes every LIVE_EVERY_S.
        due = k % 3 == 0
        ledger.ingest(batch, "live", jobs, recompute=pending if due else {})
        if due:
            pending = {}
        if k in (300, 702):  # just after a recompute: the rows follow every reading
            snapshots.append(_snapshot(cfg, tmp_path / f"at-{k}", spot))
    ledger.ingest({}, "live", recompute=pending)
    # The press went on from checkpoints to the end (the mill's explicit job, and a spot
    # price, make their days run in full).
    assert (not ledger._carries) if spot else ("press" in ledger._carries)
    for done in [*snapshots, cfg]:
        live = _stored(done)
        Ledger(done).recompute(everything=True)
        assert _stored(done) == live
    assert len([r for r in live["rows"] if r[1] == "job"]) > 20


def test_a_live_recompute_late_in_the_day_reads_only_the_readings_after_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _shop(tmp_path / "live", False)
    rng = np.random.default_rng(5)
    r = _machine(rng, coarse=False)
    r = MachineReadings(r.t_ms[:4000], r.watts[:4000], r.wh[:4000])  # 16 h, one day
    ledger = Ledger(cfg)
    for a in range(0, len(r), 10):  # stored batch by batch, as the service stores them
        piece = MachineReadings(r.t_ms[a : a + 10], r.watts[a : a + 10], r.wh[a : a + 10])
        ledger.ingest({"press": piece}, "live", recompute={})
    whole = (int(r.t_ms[0]), int(r.t_ms[-1]))
    ledger.ingest({}, "live", recompute={"press": whole})  # the day so far, in full once
    decoded: list[int] = []
    real = chunks.decode
    monkeypatch.setattr(chunks, "decode", lambda blob, n: decoded.append(n) or real(blob, n))
    t = int(r.t_ms[-1]) + STEP_MS * np.arange(1, 5, dtype=np.int64)
    watts = np.full(4, 2000.0)
    batch = MachineReadings(t, watts, r.wh[-1] + np.cumsum(watts) * STEP_MS / 3_600_000)
    ledger.ingest({"press": batch}, "live")
    assert sum(decoded) < 100  # not the 4000 readings of the day
    monkeypatch.undo()
    live = _stored(cfg)
    Ledger(cfg).recompute(everything=True)
    assert _stored(cfg) == live
