"""Stored blocks hold at most BLOCK_MAX readings: reads decode the blocks around what they
need, never a whole day, and answer as a plain sorted array of the readings would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from gateway.engine.model import MachineReadings
from gateway.ledger import chunks
from gateway.ledger.chunks import DAY_MS, ReadingStore, concat, take
from gateway.ledger.schema import SCHEMA_VERSION, connect, transaction
from tests.ledger.shop import before_day_blocks

DAY0 = 20_395 * DAY_MS  # 2025-11-03 00:00 UTC


def _readings(t: np.ndarray, seed: int = 0) -> MachineReadings:
    """Noisy power and its counter at the sorted times t."""
    watts = np.round(np.random.default_rng(seed).uniform(45.0, 3600.0, len(t)), 1)
    return MachineReadings(t.astype(np.int64), watts, np.cumsum(watts) / 3600)


def _irregular(seed: int) -> MachineReadings:
    """Two UTC days of readings 1-5 s apart with a few hour-long gaps, an empty day between
    them, and readings on both sides of the midnights."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1000, 5000, 1500)
    steps[rng.integers(0, len(steps), 4)] = 3_600_000
    first = DAY0 + DAY_MS - 600_000 + np.cumsum(steps)  # from 10 minutes before a midnight
    later = DAY0 + 3 * DAY_MS - 300_000 + np.cumsum(steps[:700])
    return _readings(np.concatenate([first[first < DAY0 + 2 * DAY_MS], later]), seed)


def _union(*parts: MachineReadings) -> MachineReadings:
    """Readings with disjoint times as one sorted series."""
    both = concat(list(parts))
    order = np.argsort(both.t_ms)
    return MachineReadings(both.t_ms[order], both.watts[order], both.wh[order])


def _same(a: MachineReadings, b: MachineReadings) -> None:
    np.testing.assert_array_equal(a.t_ms, b.t_ms)
    np.testing.assert_array_equal(a.watts, b.watts)
    np.testing.assert_array_equal(a.wh, b.wh)


def _rows(conn: sqlite3.Connection) -> list[tuple[int, int, int]]:
    """n, t_first, t_last of every stored block of chunks and parts."""
    query = "SELECT n, t_first, t_last FROM chunks UNION ALL SELECT n, t_first, t_last FROM parts"
    return [tuple(r) for r in conn.execute(query)]


def _reads_like_an_array(conn: sqlite3.Connection, ref: MachineReadings, seed: int) -> None:
    """load/window/last_before/first_from at every block edge, every midnight and random
    instants equal the answers of the plain sorted array ref (a fresh store each time)."""
    edges = [e + d for _, a, b in _rows(conn) for e in (a, b) for d in (-1, 0, 1)]
    days = range(int(ref.t_ms[0]) // DAY_MS - 1, int(ref.t_ms[-1]) // DAY_MS + 3)
    midnights = [d * DAY_MS + k for d in days for k in (-1, 0, 1)]
    rng = np.random.default_rng(seed)
    spread = rng.integers(int(ref.t_ms[0]) - DAY_MS, int(ref.t_ms[-1]) + DAY_MS, 40).tolist()
    points = sorted({*edges, *midnights, *spread})
    store = ReadingStore(conn)
    for t in points:
        k = int(np.searchsorted(ref.t_ms, t))
        store.forget()
        assert store.last_before("m", t) == (int(ref.t_ms[k - 1]) if k else None), t
        store.forget()
        assert store.first_from("m", t) == (int(ref.t_ms[k]) if k < len(ref) else None), t
    ranges = list(pairwise(points))
    ranges += [(min(a, b), max(a, b)) for a, b in rng.choice(points, (40, 2)).tolist()]
    for lo, hi in ranges:
        store.forget()
        _same(store.load("m", lo, hi), take(ref, lo, hi))
        store.forget()
        _same(store.load("m", lo, hi + 1), take(ref, lo, hi + 1))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 64 readings, so a few thousand readings make many block edges."""
    monkeypatch.setattr(chunks, "BLOCK_MAX", 64)
    return 64


def test_a_replayed_day_is_held_in_blocks_that_read_as_a_sorted_array(
    tmp_path: Path, small_blocks: int
) -> None:
    ref = _irregular(1)
    with closing(connect(tmp_path / "ledger.sqlite", create=True)) as conn:
        with transaction(conn):
            # As replay merges: a machine-day at a time, here in two halves (the second
            # one interleaving the first's times, so the day is rewritten).
            odd, even = (MachineReadings(x.t_ms, x.watts, x.wh) for x in _halves(ref))
            ReadingStore(conn).merge("m", odd)
            ReadingStore(conn).merge("m", even)
        rows = _rows(conn)
        assert max(n for n, _, _ in rows) == small_blocks
        assert sum(n for n, _, _ in rows) == len(ref)
        _reads_like_an_array(conn, ref, 1)


def _halves(r: MachineReadings) -> tuple[MachineReadings, MachineReadings]:
    return (
        MachineReadings(r.t_ms[::2], r.watts[::2], r.wh[::2]),
        MachineReadings(r.t_ms[1::2], r.watts[1::2], r.wh[1::2]),
    )


def test_live_parts_hold_at_most_block_max_and_read_as_a_sorted_array(
    tmp_path: Path, small_blocks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts of many levels and compactions of days that are over.
    monkeypatch.setattr(chunks, "SEGMENTS_MAX", 3)
    monkeypatch.setattr(chunks, "FANOUT", 3)
    ref = _irregular(2)
    with closing(connect(tmp_path / "ledger.sqlite", create=True)) as conn:
        for k in range(0, len(ref), 25):
            batch = MachineReadings(ref.t_ms[k : k + 25], ref.watts[k : k + 25], ref.wh[k : k + 25])
            with transaction(conn):
                store = ReadingStore(conn)
                store.append({"m": batch})
                store.compact()
        # A late sensor's backlog: readings between the stored ones, hours back.
        backlog = _readings(ref.t_ms[::7] + 500, 3)
        with transaction(conn):
            store = ReadingStore(conn)
            assert store.append({"m": backlog})["m"].added == len(backlog)
            store.compact()
        assert max(n for n, _, _ in _rows(conn)) <= small_blocks
        _reads_like_an_array(conn, _union(ref, backlog), 2)


@contextmanager
def _decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The readings each decode of a block decoded, while the block is open."""
    sizes: list[int] = []
    real = chunks.decode
    with monkeypatch.context() as patch:
        patch.setattr(chunks, "decode", lambda blob, n: sizes.append(n) or real(blob, n))
        yield sizes


def test_reading_late_in_a_long_day_decodes_a_block_or_two_not_the_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 hours at 1 Hz (72,000 readings) stored as replay stores them; then what the live
    # path reads every batch: neighbours of an instant, a few minutes, a new batch's check.
    t = DAY0 + np.arange(20 * 3600, dtype=np.int64) * 1000
    ref = _readings(t)
    with closing(connect(tmp_path / "ledger.sqlite", create=True)) as conn:
        with transaction(conn):
            ReadingStore(conn).merge("m", ref)
        mid, end = int(t[40_000]) + 500, int(t[-1])
        with _decoded(monkeypatch) as sizes, transaction(conn):
            store = ReadingStore(conn)
            assert store.last_before("m", mid) == t[40_000]
            assert store.first_from("m", mid) == t[40_001]
            _same(store.load("m", mid - 300_000, mid), take(ref, mid - 300_000, mid))
            _same(store.load("m", end, end + 1), take(ref, end, end + 1))
            new = _readings(t[-1:] + np.array([0, 1000, 2000]))  # the first one: again
            assert store.append({"m": new})["m"].added == 2
        assert sizes and max(sizes) <= chunks.BLOCK_MAX
        assert sum(sizes) <= 8 * chunks.BLOCK_MAX  # 5 reads; the day holds 18 blocks


def test_a_ledger_of_one_block_per_day_reads_unchanged_and_takes_new_readings(
    tmp_path: Path,
) -> None:
    # Built by hand as the version before wrote it: one 20-hour row for the day.
    path = tmp_path / "ledger.sqlite"
    t = DAY0 + np.arange(20 * 3600, dtype=np.int64) * 1000
    ref = _readings(t)
    connect(path, create=True).close()
    before_day_blocks(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO chunks (machine, day, n, t_first, t_last, data) VALUES (?,?,?,?,?,?)",
            ("m", DAY0 // DAY_MS, len(t), int(t[0]), int(t[-1]), chunks.encode(ref)),
        )
        conn.commit()
    with closing(connect(path)) as conn:  # upgraded: the one row is read as it is
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert _rows(conn) == [(len(t), int(t[0]), int(t[-1]))]
        _reads_like_an_array(conn, ref, 3)
        store = ReadingStore(conn)
        assert store.last_before("m", int(t[50_000]) + 1) == t[50_000]
        _same(store.load("m", 0, 2**62), ref)
        # A live batch next to the old row, then a replay interleaving its times.
        later = _readings(t[-1] + np.arange(1, 11, dtype=np.int64) * 1000, 4)
        with transaction(conn):
            assert ReadingStore(conn).append({"m": later})["m"].added == 10
        between = _readings(t[1000:1010] + 500, 5)
        with transaction(conn):
            assert ReadingStore(conn).merge("m", between).added == 10
        _same(ReadingStore(conn).load("m", 0, 2**62), _union(ref, later, between))
        # The day was written again: in blocks of BLOCK_MAX now.
        assert max(n for n, _, _ in _rows(conn)) == chunks.BLOCK_MAX
