"""Readings at rest: one compressed block per machine and UTC day.

A 1-million-row replay becomes about a hundred blocks, not a million SQL rows. Merging a
batch loads the blocks it touches, takes the union, drops times already stored (the
ledger keeps what it saw first) and writes the blocks back.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa

from gateway.engine.model import I64, MachineReadings, first_of_times

DAY_MS = 86_400_000
_EMPTY = MachineReadings(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


# zstd level 1 (bundled with pyarrow): about zlib's size at a third of its time.
_CODEC = pa.Codec("zstd", compression_level=1)
_BYTES_PER_READING = 24  # int64 time delta, float64 watts, float64 wh


def encode(r: MachineReadings) -> bytes:
    """Times as deltas (small repeating numbers compress well), then watts, then wh."""
    dt = np.diff(r.t_ms, prepend=np.int64(0)).astype("<i8")
    raw = dt.tobytes() + r.watts.astype("<f8").tobytes() + r.wh.astype("<f8").tobytes()
    return bytes(_CODEC.compress(raw, asbytes=True))


def decode(blob: bytes, n: int) -> MachineReadings:
    """The inverse of encode()."""
    raw = _CODEC.decompress(blob, decompressed_size=_BYTES_PER_READING * n, asbytes=True)
    t = np.cumsum(np.frombuffer(raw, "<i8", count=n)).astype(np.int64)
    watts = np.frombuffer(raw, "<f8", count=n, offset=8 * n).astype(np.float64)
    wh = np.frombuffer(raw, "<f8", count=n, offset=16 * n).astype(np.float64)
    return MachineReadings(t, watts, wh)


def concat(parts: list[MachineReadings]) -> MachineReadings:
    """Readings of consecutive, non-overlapping spans joined into one."""
    if not parts:
        return _EMPTY
    return MachineReadings(
        np.concatenate([p.t_ms for p in parts]),
        np.concatenate([p.watts for p in parts]),
        np.concatenate([p.wh for p in parts]),
    )


def take(r: MachineReadings, lo: int, hi: int) -> MachineReadings:
    """The readings with lo <= t < hi."""
    a, b = np.searchsorted(r.t_ms, [lo, hi])
    return MachineReadings(r.t_ms[a:b], r.watts[a:b], r.wh[a:b])


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


class ReadingStore:
    """Readings per machine in the `chunks` table, with the blocks of this operation cached."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[str, int], MachineReadings] = {}

    def forget(self) -> None:
        """Drop cached blocks (a long recompute walks month by month)."""
        self._cache.clear()

    def _chunk(self, machine: str, day: int) -> MachineReadings:
        key = (machine, day)
        if key not in self._cache:
            found = self._conn.execute(
                "SELECT n, data FROM chunks WHERE machine = ? AND day = ?", key
            ).fetchone()
            self._cache[key] = decode(found["data"], found["n"]) if found else _EMPTY
        return self._cache[key]

    def _write(self, machine: str, day: int, r: MachineReadings) -> None:
        self._cache[machine, day] = r
        self._conn.execute(
            "INSERT OR REPLACE INTO chunks (machine, day, n, t_first, t_last, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (machine, day, len(r), int(r.t_ms[0]), int(r.t_ms[-1]), encode(r)),
        )

    def drop(self, machine: str, lo: int, hi: int) -> MachineReadings:
        """Remove the readings with lo <= t < hi; returns what was removed, sorted."""
        removed = []
        for day in self._days(machine, lo, hi):
            block = self._chunk(machine, day)
            inside = (block.t_ms >= lo) & (block.t_ms < hi)
            if not inside.any():
                continue
            removed.append(
                MachineReadings(block.t_ms[inside], block.watts[inside], block.wh[inside])
            )
            kept = MachineReadings(block.t_ms[~inside], block.watts[~inside], block.wh[~inside])
            if len(kept):
                self._write(machine, day, kept)
            else:
                self._cache[machine, day] = _EMPTY
                self._conn.execute(
                    "DELETE FROM chunks WHERE machine = ? AND day = ?", (machine, day)
                )
        return concat(removed)

    def _days(self, machine: str, lo: int, hi: int) -> list[int]:
        """The stored blocks that may hold readings with lo <= t < hi."""
        found = self._conn.execute(
            "SELECT day FROM chunks WHERE machine = ? AND day BETWEEN ? AND ? ORDER BY day",
            (machine, lo // DAY_MS, (hi - 1) // DAY_MS),
        )
        return [d["day"] for d in found]

    def merge(self, machine: str, new: MachineReadings) -> Merged:
        """Add a sorted, duplicate-free batch; times already stored keep their stored values."""
        days = new.t_ms // DAY_MS
        bounds = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist(), len(days)]
        conflicts = 0
        fresh: list[I64] = []
        for a, b in pairwise(bounds):
            day = int(days[a])
            part = MachineReadings(new.t_ms[a:b], new.watts[a:b], new.wh[a:b])
            merged, new_times, n_conflicts = _union(self._chunk(machine, day), part)
            conflicts += n_conflicts
            if len(new_times):
                self._write(machine, day, merged)
                fresh.append(new_times)
        added = sum(len(f) for f in fresh)
        return Merged(
            added=added,
            repeated=len(new) - added,
            conflicts=conflicts,
            first_ms=int(fresh[0][0]) if fresh else None,
            last_ms=int(fresh[-1][-1]) if fresh else None,
        )

    def load(self, machine: str, lo: int, hi: int) -> MachineReadings:
        """Readings with lo <= t < hi, sorted."""
        if hi <= lo:
            return _EMPTY
        days = self._days(machine, lo, hi)
        return take(concat([self._chunk(machine, d) for d in days]), lo, hi)

    def last_before(self, machine: str, t_ms: int) -> int | None:
        """Time of the last stored reading before t_ms."""
        return self._nearest(machine, t_ms, before=True)

    def first_from(self, machine: str, t_ms: int) -> int | None:
        """Time of the first stored reading at or after t_ms."""
        return self._nearest(machine, t_ms, before=False)

    def _nearest(self, machine: str, t_ms: int, *, before: bool) -> int | None:
        # The block holding the neighbour, found by its first/last time (days may be empty).
        query = (
            "SELECT day FROM chunks WHERE machine = ? AND t_first < ? ORDER BY day DESC LIMIT 1"
            if before
            else "SELECT day FROM chunks WHERE machine = ? AND t_last >= ? ORDER BY day LIMIT 1"
        )
        found = self._conn.execute(query, (machine, t_ms)).fetchone()
        if found is None:
            return None
        t = self._chunk(machine, found["day"]).t_ms
        k = int(np.searchsorted(t, t_ms))
        return int(t[k - 1] if before else t[k])

    def span(self, machine: str) -> tuple[int, int] | None:
        """First and last stored reading of a machine."""
        found = self._conn.execute(
            "SELECT MIN(t_first) AS a, MAX(t_last) AS b FROM chunks WHERE machine = ?", (machine,)
        ).fetchone()
        return None if found["a"] is None else (int(found["a"]), int(found["b"]))
