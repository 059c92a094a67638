"""Reading storage: a live batch costs what it holds; ledgers of older versions read as before."""

from __future__ import annotations

import datetime
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from gateway.config import load_config
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger, chunks, quarters
from gateway.ledger.chunks import ReadingStore
from gateway.ledger.live import LiveState
from gateway.ledger.quarters import DayQuarters
from gateway.ledger.schema import SCHEMA_VERSION, connect, transaction
from tests.ledger.shop import (
    Series,
    dump,
    ledger_path,
    local_ms,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

# Written by shopwatt 0.1.0 (blocks compressed by pyarrow's zstd codec, schema version 1)
# from OLD_MILL's readings: one Berlin day, i.e. two UTC day blocks.
V1_LEDGER = Path(__file__).parent / "data" / "ledger-v1.sqlite"
OLD_MILL = series(
    "mill",
    "2026-11-02 00:00",
    "2026-11-02 23:59",
    [("2026-11-02 08:00", "2026-11-02 10:00", 3000.0)],
    step_s=120,
)


def _readings(s: Series, lo: str | None = None, hi: str | None = None) -> MachineReadings:
    keep = np.ones(len(s.t_ms), dtype=bool)
    if lo is not None and hi is not None:
        keep = (s.t_ms >= local_ms(lo)) & (s.t_ms < local_ms(hi))
    return MachineReadings(s.t_ms[keep], s.watts[keep], s.wh[keep])


def _stored(config: Path, machine: str) -> MachineReadings:
    with closing(connect(ledger_path(config), create=False)) as conn:
        return ReadingStore(conn).load(machine, 0, 2**62)


def _same(a: MachineReadings, b: MachineReadings) -> None:
    np.testing.assert_array_equal(a.t_ms, b.t_ms)
    np.testing.assert_array_equal(a.watts, b.watts)
    np.testing.assert_array_equal(a.wh, b.wh)


def test_a_ledger_of_shopwatt_0_1_reads_unchanged_and_is_upgraded(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ledger_path(config).parent.mkdir()
    shutil.copy(V1_LEDGER, ledger_path(config))
    # Read as it is (a reader never upgrades the file) ...
    status = Ledger(load_config(config)).status()
    assert [(m.machine, m.readings) for m in status.machines] == [("mill", len(OLD_MILL.t_ms))]
    with closing(connect(ledger_path(config), readonly=True)) as conn:
        _same(ReadingStore(conn).load("mill", 0, 2**62), _readings(OLD_MILL))
    # ... then written: upgraded, and its readings are the ones a replay finds there.
    assert shopwatt("recompute", "--config", config).exit_code == 0
    rows = dump(config, "rows")
    again = write_readings(tmp_path / "again.csv", OLD_MILL.lines())
    result = shopwatt("replay", "--config", config, "--input", again)
    assert result.exit_code == 0, result.output
    assert "720 rows, 0 new readings" in result.output
    assert dump(config, "rows") == rows
    _same(_stored(config, "mill"), _readings(OLD_MILL))
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_upgraded_ledger_finds_a_days_block_by_an_index_not_by_reading_the_blocks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(V1_LEDGER, path)
    for _ in range(2):  # upgraded, then (its version set back) upgraded again
        connect(path).close()
        with closing(sqlite3.connect(path)) as conn:
            tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            assert "WITHOUT ROWID" not in tables["chunks"] + tables["parts"]
            query = "SELECT n FROM chunks WHERE machine = 'mill' AND day = 20395"
            assert "chunks_by_key" in str(conn.execute(f"EXPLAIN QUERY PLAN {query}").fetchall())
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
            conn.commit()
    with closing(connect(path)) as conn:
        _same(ReadingStore(conn).load("mill", 0, 2**62), _readings(OLD_MILL))


def _batches(r: MachineReadings, size: int) -> list[MachineReadings]:
    return [
        MachineReadings(r.t_ms[k : k + size], r.watts[k : k + size], r.wh[k : k + size])
        for k in range(0, len(r), size)
    ]


def test_live_batches_store_and_cost_what_one_replay_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small enough that segments become parts, parts merge into higher levels, and the
    # first UTC days are folded into day blocks once the data has moved on.
    monkeypatch.setattr(chunks, "SEGMENTS_MAX", 3)
    monkeypatch.setattr(chunks, "FANOUT", 2)
    mill = series("mill", "2026-11-02 20:00", "2026-11-04 03:00", [
        ("2026-11-02 23:00", "2026-11-03 01:00", 3000.0),
        ("2026-11-03 14:00", "2026-11-03 15:30", 2500.0),
    ], step_s=300)  # fmt: skip
    replayed, live = write_shop(tmp_path / "replayed"), write_shop(tmp_path / "live")
    path = write_readings(tmp_path / "r.csv", mill.lines())
    assert shopwatt("replay", "--config", replayed, "--input", path).exit_code == 0
    ledger = Ledger(load_config(live))
    for batch in _batches(_readings(mill), 7):
        ledger.ingest({"mill": batch}, "live")
    _same(_stored(live, "mill"), _stored(replayed, "mill"))
    assert dump(live, "rows") == dump(replayed, "rows")
    assert dump(live, "day_stats") == dump(replayed, "day_stats")
    with closing(sqlite3.connect(ledger_path(live))) as conn:
        days = conn.execute("SELECT day FROM chunks ORDER BY day").fetchall()
    assert days == [(mill.t_ms[0] // chunks.DAY_MS,), (mill.t_ms[0] // chunks.DAY_MS + 1,)]


def _live_morning(
    tmp_path: Path, until: str
) -> tuple[Path, Ledger, MachineReadings, list[MachineReadings]]:
    """A shop, its ledger, and the mill's readings from 08:00 to `until`, once a minute,
    whole and in batches of 30."""
    config = write_shop(tmp_path)
    mill = _readings(series("mill", "2026-11-03 08:00", f"2026-11-03 {until}", [], step_s=60))
    return config, Ledger(load_config(config)), mill, _batches(mill, 30)


def test_a_live_batch_already_stored_at_any_level_is_counted_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "SEGMENTS_MAX", 2)
    config, ledger, _, batches = _live_morning(tmp_path, "12:00")
    for batch in batches:
        ledger.ingest({"mill": batch}, "live")
    before = _stored(config, "mill")
    # The first batch again, now in a part; one of its readings with other values.
    first = batches[0]
    changed = MachineReadings(first.t_ms, first.watts + (np.arange(30) == 5) * 100.0, first.wh)
    result = ledger.ingest({"mill": changed}, "live")
    assert (result.added, result.repeated, result.conflicts) == (0, 30, 1)
    _same(_stored(config, "mill"), before)
    assert Ledger(load_config(config)).status().machines[0].counters["conflicting_rows"] == 1


def test_a_live_batch_of_many_machines_drops_only_what_each_one_has_stored(
    tmp_path: Path,
) -> None:
    t = 1_762_156_800_000 + np.arange(110, dtype=np.int64) * 1000
    watts = np.linspace(100.0, 200.0, len(t))
    wh = np.cumsum(watts) / 3600

    def of(a: int, b: int) -> MachineReadings:
        return MachineReadings(t[a:b], watts[a:b], wh[a:b])

    with closing(connect(tmp_path / "l.sqlite", create=True)) as conn, transaction(conn):
        ReadingStore(conn).merge("mill", of(0, 100))  # a replayed day: its blocks of chunks
        merged = ReadingStore(conn).append({"mill": of(90, 110), "lathe": of(95, 105)})
        assert [(m.added, m.repeated, m.first_ms) for m in merged.values()] == [
            (10, 10, int(t[100])),
            (10, 0, int(t[95])),
        ]
        store = ReadingStore(conn)
        assert np.array_equal(store.load("mill", 0, 2**62).t_ms, t)
        assert np.array_equal(store.load("lathe", 0, 2**62).t_ms, t[95:105])


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize("recompute", [False, True])
def test_a_live_batch_late_in_the_day_writes_its_readings_not_the_day(
    tmp_path: Path, recompute: bool
) -> None:
    config = write_shop(tmp_path)
    # 20 hours at 1 Hz of noisy power (poorly compressible, like a real machine), jobs
    # every 20 minutes; then one more reading, stored (and, if asked, its day recomputed).
    t = local_ms("2026-11-03 00:00") + np.arange(20 * 3600, dtype=np.int64) * 1000
    noise = np.random.default_rng(1).normal(300.0, 100.0, len(t))
    noise += ((t // 1000) % 1200 < 400) * 2000.0
    watts = np.round(np.clip(noise, 0.0, 4000.0), 1)
    wh = np.round(np.cumsum(watts) / 3600, 4)
    path = write_readings(tmp_path / "r.csv", Series("mill", t, watts, wh).lines())
    assert shopwatt("replay", "--config", config, "--input", path).exit_code == 0
    # An open connection keeps the write-ahead log after the ingest: what it wrote.
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        batch = MachineReadings(t[-1:] + 1000, watts[-1:], wh[-1:] + 0.1)
        ledger = Ledger(load_config(config))
        ledger.ingest({"mill": batch}, "live", recompute=None if recompute else {})
        # The day's block alone is about 700 kB, its rows about 50 kB; the batch a few kB.
        assert _wal_bytes(ledger_path(config)) <= (16_000 if recompute else 8_000)


def test_dropping_readings_removes_them_at_every_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "SEGMENTS_MAX", 3)
    config = write_shop(tmp_path)
    mill = _readings(series("mill", "2026-11-03 08:00", "2026-11-03 12:00", [], step_s=60))
    ledger = Ledger(load_config(config))
    for batch in _batches(mill, 19):  # 13 batches: 4 parts, and a segment
        ledger.ingest({"mill": batch}, "live")
    lo, hi = local_ms("2026-11-03 09:30"), local_ms("2026-11-03 11:45")
    with closing(connect(ledger_path(config))) as conn, transaction(conn):
        dropped = ReadingStore(conn).drop("mill", lo, hi)
    inside = (mill.t_ms >= lo) & (mill.t_ms < hi)
    _same(dropped, MachineReadings(mill.t_ms[inside], mill.watts[inside], mill.wh[inside]))
    _same(
        _stored(config, "mill"),
        MachineReadings(mill.t_ms[~inside], mill.watts[~inside], mill.wh[~inside]),
    )


def test_a_live_batch_of_many_machines_writes_a_few_pages_not_one_per_machine(
    tmp_path: Path,
) -> None:
    # SD-card wear (docs/deploy.md): `shopwatt run`'s batch of 50 machines, two readings
    # each, is one block of the live level; its sensors' state is updated in place.
    config = write_shop(tmp_path)
    ledger = Ledger(load_config(config))
    t = local_ms("2026-11-03 08:00") + np.arange(40, dtype=np.int64) * 1000
    rng = np.random.default_rng(3)
    machines = [f"m{k:02d}" for k in range(50)]

    def batch(k: int) -> dict[str, MachineReadings]:
        part = t[2 * k : 2 * k + 2]
        watts = 9.0 * rng.integers(5, 400, (len(machines), 2))
        return {
            m: MachineReadings(part, w, 1000.0 * j + np.cumsum(w) / 3600 + k)
            for j, (m, w) in enumerate(zip(machines, watts, strict=True))
        }

    def state(k: int) -> LiveState:
        # The tracker's JSON of a sensor sending in order (gateway/inputs/tracker.py).
        sensors = [f"s{j:02d}" for j in range(len(machines))]
        return LiveState(
            [
                (s, f'[1,{2 * k},"~0",0,0,-1,"0",0,[[{k + j}.5,0,1]],[]]')
                for j, s in enumerate(sensors)
            ]
        )

    store_only: dict[str, tuple[int, int]] = {}  # no recompute: what storing costs alone
    ledger.ingest(batch(0), "live", state=state(0), recompute=store_only)
    with closing(sqlite3.connect(ledger_path(config))) as conn:  # keeps the WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        written = []
        for k in range(1, 20):
            before = _wal_bytes(ledger_path(config))
            ledger.ingest(batch(k), "live", state=state(k), recompute=store_only)
            written.append(_wal_bytes(ledger_path(config)) - before)
        ledger.disconnect()
    # 100 readings of 24 bytes (2.4 kB raw) and 50 states of 45 bytes: about 8 pages of
    # 1 kB. A row per machine and a state moved to a new rowid each time: 15.
    assert sum(written) / len(written) <= 10 * 1048, written


def test_a_backlog_batch_is_read_back_one_machine_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sensors returning with an hour of backlog make one big batch: reading one machine
    # (the floor page, a recompute) must not decode every machine's share of it.
    config = write_shop(tmp_path)
    ledger = Ledger(load_config(config))
    t = local_ms("2026-11-03 08:00") + np.arange(3600, dtype=np.int64) * 1000
    machines = [f"m{k:02d}" for k in range(5)]
    watts = np.full(len(t), 900.0)
    backlog = {
        m: MachineReadings(t, watts, np.cumsum(watts) / 3600 + k) for k, m in enumerate(machines)
    }
    ledger.ingest(backlog, "live", recompute={})
    ledger.disconnect()
    decoded: list[int] = []
    real = chunks.decode_batch
    monkeypatch.setattr(chunks, "decode_batch", lambda blob: decoded.append(1) or real(blob))
    real_one = chunks.decode
    monkeypatch.setattr(chunks, "decode", lambda blob, n: decoded.append(n) or real_one(blob, n))
    _same(_stored(config, "m03"), backlog["m03"])
    assert decoded == [3600]  # m03's own block, not a block of all five machines


def test_live_segments_of_the_version_before_are_read_and_compacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "SEGMENTS_MAX", 4)
    config, ledger, mill, batches = _live_morning(tmp_path, "10:00")
    ledger.ingest({"mill": batches[0]}, "live")
    ledger.disconnect()
    with closing(connect(ledger_path(config))) as conn, transaction(conn):
        # As shopwatt before live_batches stored a live batch: a segment per machine.
        r = batches[1]
        conn.execute(
            "INSERT INTO segments (machine, day, n, t_first, t_last, data) VALUES (?,?,?,?,?,?)",
            ("mill", int(r.t_ms[0]) // chunks.DAY_MS, len(r), int(r.t_ms[0]), int(r.t_ms[-1]),
             chunks.encode(r)),
        )  # fmt: skip
    _same(_stored(config, "mill"), chunks.concat(batches[:2]))
    again = ledger.ingest({"mill": batches[1]}, "live")  # redelivered: already stored
    assert (again.added, again.repeated) == (0, 30)
    for b in batches[2:]:
        ledger.ingest({"mill": b}, "live")
    ledger.disconnect()
    _same(_stored(config, "mill"), mill)
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone() == (0,)
    assert Ledger(load_config(config)).status().machines[0].readings == len(mill.t_ms)


def test_a_running_machines_quarter_hours_are_written_in_place(tmp_path: Path) -> None:
    # Each recompute keeps its machine's day of quarter hours (ledger/quarters.py): five
    # machines' days saved again write their own pages, not the table and its index.
    config = write_shop(tmp_path)
    ledger = Ledger(load_config(config))
    ledger.ingest({"mill": _readings(OLD_MILL)}, "live")  # creates the ledger
    ledger.disconnect()
    day = datetime.date(2026, 11, 3)

    def days(k: int) -> list[DayQuarters]:
        wh = np.random.default_rng(k).uniform(0.0, 500.0, 96)
        return [DayQuarters(day, wh, np.zeros(96, np.int8))]

    path = ledger_path(config)
    with closing(connect(path)) as conn, closing(sqlite3.connect(path)) as other:
        with transaction(conn):
            for m in range(50):
                quarters.save(conn, f"m{m:02d}", "2026-11-03", "2026-11-04", days(m))
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with transaction(conn):
            for m in range(5):
                quarters.save(conn, f"m{m:02d}", "2026-11-03", "2026-11-04", days(100 + m))
        assert _wal_bytes(path) <= 7 * 1048  # 5 pages; INSERT OR REPLACE: 10
