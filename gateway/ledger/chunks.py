"""Readings at rest: compressed blocks per machine and UTC day, at three levels.

- `chunks`: a machine's UTC day, in rows of BLOCK_MAX consecutive readings (a 1-million-row
  replay becomes a few hundred blocks, not a million SQL rows). Replay writes here, and so
  does compaction once a day is over.
- `batches`: live batches, one block per batch holding every machine's readings of it,
  appended in arrival order (rowid), so that a batch writes the table's last pages, never
  the days it falls in: a Pi's SD card wears with every byte written (a block per machine
  and batch, the `segments` of ledgers before, wrote three times the pages; they are read
  as this level until the next compaction moves them).
- `parts`: batches compacted per machine and UTC day while the day is not over, merged
  FANOUT at a time into the next level, so a day has a few dozen parts at most and each
  reading is rewritten a few times per day, however late in the day it arrives.

No stored block holds more than BLOCK_MAX readings (ledgers of older versions: until their
day is written again), so reading a few minutes, or the reading next to an instant,
decodes a block or two, never a whole day. No time is stored twice for a machine (every
merge drops the times already stored, at any level), so reading a day is concatenating its
blocks and sorting.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate, pairwise

import numpy as np
import zstandard

from gateway.engine.model import I64, MachineReadings, first_of_times

DAY_MS = 86_400_000
_EMPTY = MachineReadings(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
Block = tuple[str, int, MachineReadings]  # machine, UTC day, readings


@dataclass(frozen=True, slots=True)
class _Appending:
    """A live batch being stored: its blocks so far, and the stored blocks near it (of
    every level, by machine and UTC day)."""

    fresh: list[Block]
    near: dict[tuple[str, int], list[MachineReadings]]


# Live batches are compacted into parts once they hold this many machine blocks: about
# 80 batches of 50 machines. A larger bound writes less (a compaction writes a page per
# machine) but makes every read of the open day decode more batches.
SEGMENTS_MAX = 4096
FANOUT = 8  # parts of one level merged into one of the next level
# A live batch of more readings than this (about 80 s of 50 sensors at 1 Hz) goes to parts
# per machine instead of one block of the live level.
LIVE_BATCH_MAX = 4096
# The most readings a block of chunks or parts holds: 68 minutes at 1 Hz. Decoding one costs
# 0.07 ms here (a 20-hour day block: 1.3-2.9 ms), and noisy readings compress to 10.0-10.3
# bytes each from 512 to 72,000 readings a block (zstd level 1 finds its repeats nearby);
# smaller blocks would only add rows (22 a day at 1 Hz) to every listing of a day's blocks.
BLOCK_MAX = 4096
# Parts of BLOCK_MAX readings are kept at this level and never merged again, so merges stay
# below BLOCK_MAX too (a merge's readings beyond its full blocks move up a level): a day's
# parts are its readings / BLOCK_MAX full ones plus fewer than FANOUT per level (about 40 at
# most), and every lookup lists the day's parts before it decodes one.
_FULL = 0


# zstd level 1: about zlib's size at a third of its time. Frames as pyarrow's zstd codec
# wrote them before (ledgers of older versions read unchanged). One context per thread:
# zstandard's compressors are not thread-safe and cost more to create than to use.
_ZSTD = threading.local()
_BYTES_PER_READING = 24  # int64 time delta, float64 watts, float64 wh


def _codec() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    if not hasattr(_ZSTD, "pair"):
        _ZSTD.pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] = _ZSTD.pair
    return pair


def encode(r: MachineReadings) -> bytes:
    """Times as deltas (small repeating numbers compress well), then watts, then wh."""
    dt = np.diff(r.t_ms, prepend=np.int64(0)).astype("<i8")
    raw = dt.tobytes() + r.watts.astype("<f8").tobytes() + r.wh.astype("<f8").tobytes()
    return _codec()[0].compress(raw)


def decode(blob: bytes, n: int) -> MachineReadings:
    """The inverse of encode()."""
    raw = _codec()[1].decompress(blob, max_output_size=_BYTES_PER_READING * n)
    t = np.cumsum(np.frombuffer(raw, "<i8", count=n)).astype(np.int64)
    watts = np.frombuffer(raw, "<f8", count=n, offset=8 * n).astype(np.float64)
    wh = np.frombuffer(raw, "<f8", count=n, offset=16 * n).astype(np.float64)
    return MachineReadings(t, watts, wh)


def encode_batch(parts: list[Block]) -> bytes:
    """Blocks of (machine, UTC day, readings) as one: a JSON line of who and how many, then
    every block's time deltas, then watts, then wh (alike values side by side compress)."""
    head = json.dumps([[m, day, len(r)] for m, day, r in parts], separators=(",", ":"))
    every = concat([r for _, _, r in parts])
    dt = np.diff(every.t_ms, prepend=np.int64(0)).astype("<i8")
    raw = dt.tobytes() + every.watts.astype("<f8").tobytes() + every.wh.astype("<f8").tobytes()
    return _codec()[0].compress(head.encode() + b"\n" + raw)


def decode_batch(blob: bytes) -> list[Block]:
    """The inverse of encode_batch()."""
    head, _, raw = _codec()[1].decompress(blob).partition(b"\n")
    who = json.loads(head)
    n = sum(k for _, _, k in who)
    t = np.cumsum(np.frombuffer(raw, "<i8", count=n)).astype(np.int64)
    watts = np.frombuffer(raw, "<f8", count=n, offset=8 * n).astype(np.float64)
    wh = np.frombuffer(raw, "<f8", count=n, offset=16 * n).astype(np.float64)
    ends = list(accumulate(k for _, _, k in who))
    return [
        (m, day, MachineReadings(t[b - k : b], watts[b - k : b], wh[b - k : b]))
        for (m, day, k), b in zip(who, ends, strict=True)
    ]


def _batch_columns(blocks: list[Block]) -> tuple[int, int, int, bytes]:
    """A live batch's row: how many blocks, its first and last time, the data."""
    first = min(int(r.t_ms[0]) for _, _, r in blocks)
    last = max(int(r.t_ms[-1]) for _, _, r in blocks)
    return len(blocks), first, last, encode_batch(blocks)


def concat(parts: list[MachineReadings]) -> MachineReadings:
    """Readings of consecutive, non-overlapping spans joined into one (one span: itself)."""
    if len(parts) <= 1:
        return parts[0] if parts else _EMPTY
    return MachineReadings(
        np.concatenate([p.t_ms for p in parts]),
        np.concatenate([p.watts for p in parts]),
        np.concatenate([p.wh for p in parts]),
    )


def _sorted(blocks: list[MachineReadings]) -> MachineReadings:
    """Blocks of one machine with disjoint times (any order) as one sorted series."""
    blocks = sorted((b for b in blocks if len(b)), key=lambda b: int(b.t_ms[0]))
    if len(blocks) <= 1:
        return blocks[0] if blocks else _EMPTY
    both = concat(blocks)
    if all(a.t_ms[-1] < b.t_ms[0] for a, b in pairwise(blocks)):
        return both  # a day's rows one after the other (chunks, full parts): no sort
    order = np.argsort(both.t_ms, kind="stable")
    return MachineReadings(both.t_ms[order], both.watts[order], both.wh[order])


def _decoded(found: Iterable[sqlite3.Row]) -> MachineReadings:
    return _sorted([decode(b["data"], b["n"]) for b in found])


def _cut(r: MachineReadings) -> list[MachineReadings]:
    """A sorted series as consecutive blocks of BLOCK_MAX readings (the last one: the rest)."""
    return [_slice(r, k, k + BLOCK_MAX) for k in range(0, len(r), BLOCK_MAX)]


def _slice(r: MachineReadings, a: int, b: int) -> MachineReadings:
    return MachineReadings(r.t_ms[a:b], r.watts[a:b], r.wh[a:b])


def take(r: MachineReadings, lo: int, hi: int) -> MachineReadings:
    """The readings with lo <= t < hi."""
    a, b = np.searchsorted(r.t_ms, [lo, hi])
    return _slice(r, int(a), int(b))


def _pick(r: MachineReadings, keep: np.ndarray) -> MachineReadings:
    return MachineReadings(r.t_ms[keep], r.watts[keep], r.wh[keep])


@dataclass(frozen=True, slots=True)
class Merged:
    """What one batch changed for one machine."""

    added: int  # readings not stored before
    repeated: int  # readings whose time was already stored: dropped
    conflicts: int  # of those, readings with other values than the stored one
    first_ms: int | None  # earliest and latest added reading; None when nothing was added
    last_ms: int | None


def _union(stored: MachineReadings, part: MachineReadings) -> tuple[MachineReadings, I64, int]:
    """stored + part by time, stored values winning a tie; also the times new to stored
    and how many of part's repeats carry other values."""
    if not len(stored):  # a day never seen: nothing to merge with
        return part, part.t_ms, 0
    both = concat([stored, part])  # stored first: it wins a tie
    kept = first_of_times(both.t_ms, both.watts, both.wh)
    new_times = np.setdiff1d(part.t_ms, stored.t_ms, assume_unique=True)
    return kept.readings, new_times, kept.conflicts


def _by_day(new: MachineReadings) -> list[tuple[int, MachineReadings]]:
    """A sorted series cut at UTC midnights."""
    days = new.t_ms // DAY_MS
    bounds = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
    return [
        (int(days[a]), MachineReadings(new.t_ms[a:b], new.watts[a:b], new.wh[a:b]))
        for a, b in pairwise(bounds)
    ]


# The levels kept per machine and UTC day (or their blocks overlapping a time range); the
# live level (batches of every machine) is read through ReadingStore._live_rows.
_LEVELS = ("chunks", "parts")
_ALL = " UNION ALL ".join(f"SELECT n, data FROM {t} WHERE machine = ? AND day = ?" for t in _LEVELS)
# The blocks of a machine's UTC day in chunks and parts: their first and last times.
_SPANS = " UNION ALL ".join(
    f"SELECT t_first, t_last FROM {t} WHERE machine = ? AND day = ?" for t in _LEVELS
)
_OVERLAPPING = " UNION ALL ".join(
    f"SELECT n, data FROM {t} WHERE machine = ? AND day = ? AND t_last >= ? AND t_first <= ?"
    for t in _LEVELS
)
# Rows of the live level: live_batches, and the `segments` of older ledgers (negative ids,
# one block each), all or those matching a condition ({0}).
_LIVE = """SELECT id, NULL AS machine, 0 AS day, 0 AS n, data FROM live_batches{0}
    UNION ALL SELECT -id, machine, day, n, data FROM segments{0}"""
_IN_RANGE = " WHERE t_last >= ?1 AND t_first <= ?2"
# The blocks of chunks and parts of some machines (a JSON list) that overlap [lo, hi]: one
# query for a live batch of every machine, not one per machine.
_NEAR = " UNION ALL ".join(
    f"SELECT machine, day, n, data FROM {t} WHERE machine IN (SELECT value FROM json_each(?1))"
    " AND day BETWEEN ?2 AND ?3 AND t_last >= ?4 AND t_first <= ?5"
    for t in _LEVELS
)


def _blocks(machine: str | None, day: int, n: int, data: bytes) -> list[Block]:
    if machine is None:
        return decode_batch(data)
    return [(machine, day, decode(data, n))]


class ReadingStore:
    """Readings per machine in the ledger, with the days of this operation cached."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[str, int], MachineReadings] = {}
        # Rows of the live level read so far, by id: a batch appended needs only the rows
        # its times overlap; a day read needs them all (_live_whole).
        self._live: dict[int, list[Block]] = {}
        self._live_whole = False
        self._by_machine: dict[str, list[Block]] | None = None  # all of _live, by machine

    def forget(self) -> None:
        """Drop cached days (a long recompute walks month by month)."""
        self._cache.clear()

    def _live_rows(
        self, where: str = "", params: tuple[object, ...] = ()
    ) -> dict[int, list[Block]]:
        """The rows of the live level (those matching `where`), decoded once per operation."""
        if self._live_whole:
            return self._live
        found = {}
        # By position: readings_per_machine() may be given a connection without sqlite3.Row.
        for key, *row in self._conn.execute(_LIVE.format(where), params):
            if key not in self._live:
                self._live[key] = _blocks(*row)
            found[key] = self._live[key]
        self._live_whole = not where
        return found

    def _live_blocks(self, machine: str) -> list[Block]:
        """Every block of a machine in the live level."""
        if self._by_machine is None:
            self._by_machine = {}
            for key in sorted(self._live_rows()):
                for block in self._live[key]:
                    self._by_machine.setdefault(block[0], []).append(block)
        return self._by_machine.get(machine, [])

    def _day(self, machine: str, day: int) -> MachineReadings:
        """Every stored reading of a machine's UTC day, at any level."""
        key = (machine, day)
        if key not in self._cache:
            stored = [decode(b["data"], b["n"]) for b in self._conn.execute(_ALL, key * 2)]
            live = [r for _, d, r in self._live_blocks(machine) if d == day]
            found = _sorted(stored + live)
            # Readers get views of it (load, window): none may change it for the next one.
            for a in (found.t_ms, found.watts, found.wh):
                a.flags.writeable = False
            self._cache[key] = found
        return self._cache[key]

    def _write_day(self, machine: str, day: int, r: MachineReadings) -> None:
        """Replace every level of a machine's UTC day by its rows of chunks."""
        self._cache[machine, day] = r
        for table in _LEVELS:
            self._conn.execute(f"DELETE FROM {table} WHERE machine = ? AND day = ?", (machine, day))
        self._drop_live(machine, day)
        self._conn.executemany(
            "INSERT INTO chunks (machine, day, n, t_first, t_last, data) VALUES (?, ?, ?, ?, ?, ?)",
            ((machine, day, len(b), int(b.t_ms[0]), int(b.t_ms[-1]), encode(b)) for b in _cut(r)),
        )

    def _drop_live(self, machine: str, day: int) -> None:
        """Remove a machine's UTC day from the live level (the batches holding it are
        written again without it: replay, drop and the end of a day, not live batches)."""
        for key, blocks in list(self._live_rows().items()):
            kept = [b for b in blocks if (b[0], b[1]) != (machine, day)]
            if len(kept) == len(blocks):
                continue
            if key < 0:
                self._conn.execute("DELETE FROM segments WHERE id = ?", (-key,))
            elif kept:
                self._conn.execute(
                    "UPDATE live_batches SET parts = ?, t_first = ?, t_last = ?, data = ? "
                    "WHERE id = ?",
                    (*_batch_columns(kept), key),
                )
            else:
                self._conn.execute("DELETE FROM live_batches WHERE id = ?", (key,))
            if kept:
                self._live[key] = kept
            else:
                del self._live[key]
            self._by_machine = None

    def drop(self, machine: str, lo: int, hi: int) -> MachineReadings:
        """Remove the readings with lo <= t < hi (at every level); returns them, sorted."""
        removed = []
        for day in self._days(machine, lo, hi):
            stored = self._day(machine, day)
            inside = (stored.t_ms >= lo) & (stored.t_ms < hi)
            if not inside.any():
                continue
            removed.append(_pick(stored, inside))
            self._write_day(machine, day, _pick(stored, ~inside))
        return concat(removed)

    def _days(self, machine: str, lo: int, hi: int) -> list[int]:
        """The UTC days of a machine that may hold readings with lo <= t < hi."""
        query = " UNION ".join(
            f"SELECT day FROM {t} WHERE machine = ? AND day BETWEEN ? AND ?" for t in _LEVELS
        )
        first, last = lo // DAY_MS, (hi - 1) // DAY_MS
        found = {d for (d,) in self._conn.execute(query, (machine, first, last) * 2)}
        found |= {d for _, d, _ in self._live_blocks(machine) if first <= d <= last}
        return sorted(found)

    def _whole(self, machine: str, day: int, lo: int, hi: int) -> bool:
        """True when a machine's UTC day is in memory, or [lo, hi) holds all of it."""
        if (machine, day) in self._cache:
            return True
        if lo > day * DAY_MS:  # a live read of the last minutes: no need to look
            return False
        query = " UNION ALL ".join(
            f"SELECT MAX(t_last) FROM {t} WHERE machine = ? AND day = ?" for t in _LEVELS
        )
        found = [b for (b,) in self._conn.execute(query, (machine, day) * 2) if b is not None]
        found += [int(r.t_ms[-1]) for _, d, r in self._live_blocks(machine) if d == day]
        return max(found, default=hi) < hi

    def merge(self, machine: str, new: MachineReadings) -> Merged:
        """Add a sorted, duplicate-free batch into day blocks (replay: many readings a day);
        times already stored keep their stored values."""
        return self._add(machine, new, None)

    def append(
        self, batches: Mapping[str, MachineReadings], newest: dict[str, int] | None = None
    ) -> dict[str, Merged]:
        """Add sorted, duplicate-free live batches of machines as one block of the live
        level: the write is the batch's size, not its days'; times already stored keep
        their stored values.

        `newest`: each machine's newest stored time where the caller knows it (kept from
        one batch to the next while no other process writes); a machine's batch wholly
        newer reads nothing. Brought up to date here.
        """
        batches = {m: r for m, r in batches.items() if len(r)}
        if not batches:
            return {}
        if newest is not None:
            for machine in batches.keys() - newest.keys():
                span = self.span(machine)
                newest[machine] = span[1] if span else -1
        # The stored blocks the batch's times overlap (a redelivery, a late sensor), at every
        # level: read once for all machines that may have some.
        near: dict[tuple[str, int], list[MachineReadings]] = {}
        older = {m: r for m, r in batches.items() if newest is None or int(r.t_ms[0]) <= newest[m]}
        if older:
            lo = min(int(r.t_ms[0]) for r in older.values())
            hi = max(int(r.t_ms[-1]) for r in older.values())
            for blocks in self._live_rows(_IN_RANGE, (lo, hi)).values():
                for machine, day, r in blocks:
                    near.setdefault((machine, day), []).append(r)
            which = json.dumps(list(older))
            for machine, day, n, data in self._conn.execute(
                _NEAR, (which, lo // DAY_MS, hi // DAY_MS, lo, hi)
            ):
                near.setdefault((machine, day), []).append(decode(data, n))
        if newest is not None:
            for machine, r in batches.items():
                newest[machine] = max(newest[machine], int(r.t_ms[-1]))
        fresh: list[Block] = []
        merged = {m: self._add(m, r, _Appending(fresh, near)) for m, r in batches.items()}
        if sum(len(r) for _, _, r in fresh) > LIVE_BATCH_MAX:
            # A backlog or a bulk ingest: stored per machine, so that reading one machine
            # never decodes every machine's share of it (one block saves pages when small).
            for machine, day, r in fresh:
                self._add_part(machine, day, 1, r)
        elif fresh:
            cursor = self._conn.execute(
                "INSERT INTO live_batches (parts, t_first, t_last, data) VALUES (?, ?, ?, ?)",
                _batch_columns(fresh),
            )
            assert cursor.lastrowid is not None
            self._live[cursor.lastrowid] = fresh
            if self._by_machine is not None:
                for block in fresh:
                    self._by_machine.setdefault(block[0], []).append(block)
        return merged

    def _add(self, machine: str, new: MachineReadings, live: _Appending | None) -> Merged:
        """Add to day blocks (live None) or to the live blocks of the batch being stored."""
        conflicts = 0
        fresh: list[I64] = []
        for day, part in _by_day(new):
            if live is not None and (machine, day) not in self._cache:
                # Only the blocks the batch overlaps: a live batch is newer than all of them.
                lo, hi = int(part.t_ms[0]), int(part.t_ms[-1])
                near = live.near.get((machine, day), [])
                stored = _sorted([r for r in near if r.t_ms[-1] >= lo and r.t_ms[0] <= hi])
            else:
                stored = self._day(machine, day)
            merged, new_times, n_conflicts = _union(stored, part)
            conflicts += n_conflicts
            if not len(new_times):
                continue
            fresh.append(new_times)
            if live is None:
                self._write_day(machine, day, merged)
                continue
            if (machine, day) in self._cache:
                self._cache[machine, day] = merged
            if len(new_times) < len(part):
                part = _pick(part, np.isin(part.t_ms, new_times))
            live.fresh.append((machine, day, part))
        n_added = sum(len(f) for f in fresh)
        return Merged(
            added=n_added,
            repeated=len(new) - n_added,
            conflicts=conflicts,
            first_ms=int(fresh[0][0]) if fresh else None,
            last_ms=int(fresh[-1][-1]) if fresh else None,
        )

    def _overlapping(self, machine: str, day: int, lo: int, hi: int) -> MachineReadings:
        """The readings of the blocks of a machine's UTC day that overlap [lo, hi]."""
        blocks = [
            decode(b["data"], b["n"])
            for b in self._conn.execute(_OVERLAPPING, (machine, day, lo, hi) * 2)
        ]
        live = [r for _, d, r in self._live_blocks(machine) if d == day]
        blocks += [r for r in live if r.t_ms[-1] >= lo and r.t_ms[0] <= hi]
        return _sorted(blocks)

    def compact(self) -> None:
        """Move the live level into parts once it holds SEGMENTS_MAX machine blocks.

        A machine's days before its newest one are over: their parts and live blocks become
        the day's block (the only time a day is rewritten whole: once, when it is done).
        """
        (held,) = self._conn.execute(
            "SELECT (SELECT COALESCE(SUM(parts), 0) FROM live_batches)"
            " + (SELECT COUNT(*) FROM segments)"
        ).fetchone()
        if held < SEGMENTS_MAX:
            return
        found: dict[tuple[str, int], list[MachineReadings]] = {}
        for key in sorted(self._live_rows()):
            for machine, day, r in self._live[key]:
                found.setdefault((machine, day), []).append(r)
        self._conn.execute("DELETE FROM segments")
        self._conn.execute("DELETE FROM live_batches")
        self._live.clear()
        self._by_machine = None
        newest: dict[str, int] = {}
        for machine, day in found:
            newest[machine] = max(day, newest.get(machine, day))
        for (machine, day), blocks in found.items():
            if day == newest[machine]:
                self._add_part(machine, day, 1, _sorted(blocks))
        for machine, last in newest.items():
            done = self._conn.execute(
                "SELECT DISTINCT day FROM parts WHERE machine = ? AND day < ?", (machine, last)
            ).fetchall()
            days = {d["day"] for d in done} | {d for m, d in found if m == machine and d < last}
            for day in sorted(days):
                self._cache.pop((machine, day), None)
                blocks = [self._day(machine, day), *found.get((machine, day), [])]
                self._write_day(machine, day, _sorted(blocks))

    def _add_part(self, machine: str, day: int, level: int, r: MachineReadings) -> None:
        """Store a part: its full blocks of BLOCK_MAX readings at _FULL, the rest at `level`;
        FANOUT parts of one level are merged into the next."""
        blocks = _cut(r)
        levels = [_FULL] * len(blocks)
        if len(blocks[-1]) < BLOCK_MAX:
            levels[-1] = level
        self._conn.executemany(
            "INSERT INTO parts (machine, day, level, t_first, n, t_last, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (machine, day, at, int(b.t_ms[0]), len(b), int(b.t_ms[-1]), encode(b))
                for at, b in zip(levels, blocks, strict=True)
            ),
        )
        if levels[-1] == _FULL:
            return
        key = (machine, day, level)
        where = "FROM parts WHERE machine = ? AND day = ? AND level = ?"
        # Counted by the index: the parts' blocks are only read when they are merged.
        (same,) = self._conn.execute(f"SELECT COUNT(*) {where}", key).fetchone()
        if same >= FANOUT:
            merged = _decoded(self._conn.execute(f"SELECT n, data {where}", key))
            self._conn.execute(f"DELETE {where}", key)
            self._add_part(machine, day, level + 1, merged)

    def load(self, machine: str, lo: int, hi: int) -> MachineReadings:
        """Readings with lo <= t < hi, sorted, decoding only the blocks that hold some (a
        live recompute reads the minutes after its checkpoint, not the whole day)."""
        if hi <= lo:
            return _EMPTY
        # A day read whole is decoded once per operation (a recompute reads it again).
        found = [
            self._day(machine, d)
            if self._whole(machine, d, lo, hi)
            else self._overlapping(machine, d, lo, hi - 1)
            for d in self._days(machine, lo, hi)
        ]
        return take(concat(found), lo, hi)

    def last_before(self, machine: str, t_ms: int) -> int | None:
        """Time of the last stored reading before t_ms."""
        return self._nearest(machine, t_ms, before=True)

    def first_from(self, machine: str, t_ms: int) -> int | None:
        """Time of the first stored reading at or after t_ms."""
        return self._nearest(machine, t_ms, before=False)

    def _nearest(self, machine: str, t_ms: int, *, before: bool) -> int | None:
        # The day holding the neighbour, found by its blocks' first/last times (days may be
        # empty): the latest day with a reading before t_ms, or the earliest one after.
        query = " UNION ALL ".join(
            f"SELECT MAX(day) AS day FROM {t} WHERE machine = ? AND t_first < ?"
            if before
            else f"SELECT MIN(day) AS day FROM {t} WHERE machine = ? AND t_last >= ?"
            for t in _LEVELS
        )
        days = [d["day"] for d in self._conn.execute(query, (machine, t_ms) * len(_LEVELS))]
        days += [
            d
            for _, d, r in self._live_blocks(machine)
            if (r.t_ms[0] < t_ms if before else r.t_ms[-1] >= t_ms)
        ]
        found = [d for d in days if d is not None]
        if not found:
            return None
        day = max(found) if before else min(found)
        # A block that ends before t_ms (or starts at or after it) answers with its span;
        # only the blocks around t_ms are decoded (a block or two: BLOCK_MAX readings each).
        spans: list[tuple[int, int]] = [
            (a, b) for a, b in self._conn.execute(_SPANS, (machine, day) * len(_LEVELS))
        ]
        spans += [
            (int(r.t_ms[0]), int(r.t_ms[-1])) for _, d, r in self._live_blocks(machine) if d == day
        ]
        t = np.zeros(0, np.int64)
        if (machine, day) in self._cache:
            t = self._cache[machine, day].t_ms
        elif any(a < t_ms <= b for a, b in spans):
            t = self._overlapping(machine, day, t_ms - 1 if before else t_ms, t_ms).t_ms
        k = int(np.searchsorted(t, t_ms))
        if before:
            return max([b for _, b in spans if b < t_ms] + ([int(t[k - 1])] if k else []))
        return min([a for a, _ in spans if a >= t_ms] + ([int(t[k])] if k < len(t) else []))

    def span(self, machine: str) -> tuple[int, int] | None:
        """First and last stored reading of a machine."""
        _, first, last = self.summary(machine)
        return None if first is None or last is None else (first, last)

    def summary(self, machine: str) -> tuple[int, int | None, int | None]:
        """How many readings a machine has, its first and last."""
        query = " UNION ALL ".join(
            f"SELECT SUM(n) AS n, MIN(t_first) AS a, MAX(t_last) AS b FROM {t} WHERE machine = ?"
            for t in _LEVELS
        )
        found = self._conn.execute(query, (machine,) * len(_LEVELS)).fetchall()
        live = [r for _, _, r in self._live_blocks(machine)]
        firsts = [f["a"] for f in found if f["a"] is not None] + [int(r.t_ms[0]) for r in live]
        lasts = [f["b"] for f in found if f["b"] is not None] + [int(r.t_ms[-1]) for r in live]
        return (
            sum(f["n"] or 0 for f in found) + sum(len(r) for r in live),
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
        )

    def per_machine(self) -> dict[str, int]:
        """How many readings each machine has stored, at every level."""
        query = " UNION ALL ".join(f"SELECT machine, n FROM {t}" for t in _LEVELS)
        found = self._conn.execute(f"SELECT machine, SUM(n) FROM ({query}) GROUP BY machine")
        counts = {m: int(n) for m, n in found}
        for blocks in self._live_rows().values():
            for machine, _, r in blocks:
                counts[machine] = counts.get(machine, 0) + len(r)
        return counts


def readings_per_machine(conn: sqlite3.Connection) -> dict[str, int]:
    """How many readings each machine has stored, at every level."""
    return ReadingStore(conn).per_machine()
