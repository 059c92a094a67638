"""A replayed file staged on disk, then merged one machine-day at a time: memory stays flat.

Rows arrive batch by batch in file order, in any time order. Each batch is split per
machine and UTC day and kept in a temporary table (SQLite keeps it in a temp
file, not in memory). Once the whole file has been read, and so checked, each machine-day
is gathered, the first row of equal times kept (as if the whole file had been sorted at
once) and merged into the ledger's blocks. A file of any length needs the memory of one
batch and one machine-day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.engine.model import MachineReadings, ReadingRows, first_of_times
from gateway.ledger.chunks import DAY_MS, Merged, ReadingStore, concat


@dataclass(frozen=True, slots=True)
class Staged:
    """What merging one machine's staged rows did."""

    duplicates: int  # rows repeating an earlier row's time in the file: dropped
    conflicts: int  # of those, rows whose values differ from the kept (first) one
    merged: Merged  # what the ledger's blocks took of the rest


def stage(conn: sqlite3.Connection, batches: Iterable[ReadingRows]) -> int:
    """Keep every batch in the temporary table `staged`; returns the rows staged."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staged (machine INTEGER, day INTEGER, seq INTEGER, "
        "n INTEGER, data BLOB, PRIMARY KEY (machine, day, seq))"
    )
    conn.execute("DELETE FROM temp.staged")
    rows = 0
    for seq, batch in enumerate(batches):
        rows += len(batch)
        day = batch.t_ms // DAY_MS
        # Stable: rows of equal times keep their file order, so the first one still wins.
        order = np.lexsort((batch.t_ms, day, batch.machine))
        m, d = batch.machine[order], day[order]
        edges = np.flatnonzero((m[1:] != m[:-1]) | (d[1:] != d[:-1])) + 1
        starts, ends = np.r_[0, edges], np.r_[edges, len(order)]
        conn.executemany(
            "INSERT INTO temp.staged VALUES (?, ?, ?, ?, ?)",
            (
                (int(m[a]), int(d[a]), seq, int(b - a), _pack(batch, order[a:b]))
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
                if b > a
            ),
        )
    return rows


def _pack(batch: ReadingRows, pick: npt.NDArray[np.intp]) -> bytes:
    # Raw, not compressed like the ledger's blocks: a staged row lives for one replay, and
    # compressing it would cost more than the temp file write it saves.
    return b"".join(a[pick].tobytes() for a in (batch.t_ms, batch.watts, batch.wh))


def _unpack(blob: bytes, n: int) -> MachineReadings:
    t = np.frombuffer(blob, np.int64, count=n)
    watts = np.frombuffer(blob, np.float64, count=n, offset=8 * n)
    return MachineReadings(t, watts, np.frombuffer(blob, np.float64, count=n, offset=16 * n))


def merge_staged(
    conn: sqlite3.Connection, store: ReadingStore, machines: Sequence[str]
) -> Iterator[tuple[str, Staged]]:
    """Merge the staged rows into the ledger, machine by machine, day by day."""
    groups = conn.execute("SELECT DISTINCT machine, day FROM temp.staged ORDER BY machine, day")
    by_machine: dict[int, list[int]] = {}
    for g in groups.fetchall():
        by_machine.setdefault(g["machine"], []).append(g["day"])
    for machine, days in by_machine.items():
        duplicates = conflicts = 0
        total = Merged(0, 0, 0, None, None)
        for day in days:
            parts = conn.execute(
                "SELECT n, data FROM temp.staged WHERE machine = ? AND day = ? ORDER BY seq",
                (machine, day),
            )
            both = concat([_unpack(p["data"], p["n"]) for p in parts])
            kept = first_of_times(both.t_ms, both.watts, both.wh)
            duplicates += kept.dropped
            conflicts += kept.conflicts
            total = _add(total, store.merge(machines[machine], kept.readings))
            store.forget()  # the next day starts with no blocks in memory
        yield machines[machine], Staged(duplicates, conflicts, total)
    conn.execute("DELETE FROM temp.staged")


def _add(a: Merged, b: Merged) -> Merged:
    """Two merges of consecutive days of one machine as one."""
    return Merged(
        a.added + b.added,
        a.repeated + b.repeated,
        a.conflicts + b.conflicts,
        a.first_ms if a.first_ms is not None else b.first_ms,
        b.last_ms if b.last_ms is not None else a.last_ms,
    )
