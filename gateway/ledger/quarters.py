"""Each machine's energy and state per quarter hour, kept per local day with its rows.

The month page finds the demand peak by summing these (about 900 bytes per machine and
day) instead of reading a month of readings, and draws its state strips from them.
They are written where the rows are (Recomputer.save), from the same engine run, so
they follow every change of the readings, jobs or settings as the rows do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gateway.config import Machine, ShopConfig
from gateway.engine.demand import (
    NO_DATA,
    QUARTER_MS,
    quarter_hour_wh,
    quarter_starts,
    quarter_states,
)
from gateway.engine.energy import interval_energy
from gateway.engine.localtime import midnight_ms
from gateway.engine.model import F64, I64, MachineReadings
from gateway.engine.states import machine_states
from gateway.ledger.bill import MonthEnergy
from gateway.ledger.chunks import ReadingStore

I8 = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class DayQuarters:
    """One machine's local day: Wh and state (engine/demand.py quarter_states) per quarter
    hour from its midnight (92, 96 or 100 of them)."""

    day: date
    wh: F64
    states: I8


def of_days(
    machine: Machine,
    window: MachineReadings,
    interval_wh: F64,
    first_day: date,
    end_day: date,
    tz: ZoneInfo,
) -> list[DayQuarters]:
    """The local days [first_day, end_day) that have energy or readings, from the engine's
    interval energies of `window`."""
    days = [first_day + timedelta(days=k) for k in range((end_day - first_day).days)]
    edges = [midnight_ms(d, tz) for d in [*days, end_day]]
    starts = quarter_starts(edges[0], edges[-1])
    t = window.t_ms
    wh = quarter_hour_wh(t, interval_wh, starts) if len(t) > 1 else np.zeros(len(starts))
    states = quarter_states(
        t, machine_states(window.watts, machine), machine.max_gap_s * 1000, starts
    )
    cut = np.searchsorted(starts, edges).tolist()
    found = []
    for k, day in enumerate(days):
        a, b = cut[k], cut[k + 1]
        if wh[a:b].any() or (states[a:b] != NO_DATA).any():
            found.append(DayQuarters(day, wh[a:b], states[a:b]))
    return found


def save(
    conn: sqlite3.Connection, machine: str, first: str, end: str, found: Sequence[DayQuarters]
) -> None:
    """Replace the machine's kept days [first, end); only the days that changed are written
    (a running machine's day is saved every few seconds)."""
    span = (machine, first, end)
    stored = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT day, wh, states FROM quarters WHERE machine = ? AND day >= ? AND day < ?",
            span,
        )
    }
    new = {q.day.isoformat(): (q.wh.astype("<f8").tobytes(), q.states.tobytes()) for q in found}
    conn.executemany(
        "DELETE FROM quarters WHERE machine = ? AND day = ?",
        [(machine, day) for day in stored.keys() - new.keys()],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO quarters VALUES (?, ?, ?, ?)",
        [(machine, day, *blobs) for day, blobs in new.items() if stored.get(day) != blobs],
    )


# Machine -> the month's Wh and states per quarter hour (from the month's first midnight).
Kept = dict[str, tuple[F64, I8]]


def load(conn: sqlite3.Connection, cfg: ShopConfig, first: date, end: date) -> Kept:
    """The kept quarter hours of the local days [first, end), per machine; a machine with
    a day of readings but nothing kept for it (a ledger older than this table) is left out:
    its figures come from its readings."""
    tz = cfg.site.tz
    lo = midnight_ms(first, tz)
    n = len(quarter_starts(lo, midnight_ms(end, tz)))
    span = (first.isoformat(), end.isoformat())
    found: Kept = {}
    for machine in cfg.machines:
        missing = conn.execute(
            "SELECT COUNT(*) FROM day_stats s WHERE machine = ? AND day >= ? AND day < ? "
            "AND NOT EXISTS (SELECT 1 FROM quarters q WHERE q.machine = s.machine "
            "AND q.day = s.day)",
            (machine, *span),
        ).fetchone()[0]
        if missing:
            continue
        wh, states = np.zeros(n), np.full(n, NO_DATA, dtype=np.int8)
        for day, wh_blob, states_blob in conn.execute(
            "SELECT day, wh, states FROM quarters WHERE machine = ? AND day >= ? AND day < ?",
            (machine, *span),
        ):
            k = (midnight_ms(date.fromisoformat(day), tz) - lo) // QUARTER_MS
            day_wh = np.frombuffer(wh_blob, "<f8")
            wh[k : k + len(day_wh)] = day_wh
            states[k : k + len(day_wh)] = np.frombuffer(states_blob, np.int8)
        found[machine] = (wh, states)
    return found


class KeptEnergy(MonthEnergy):
    """The month's quarter hours from the kept ones; readings only around the peak (to
    share it out to the jobs in it), and for what has none kept (a site meter)."""

    def __init__(
        self,
        cfg: ShopConfig,
        store: ReadingStore,
        lo: int,
        hi: int,
        kept: Kept,
        bounds: Callable[[str, int, int], tuple[int, int]],
    ) -> None:
        super().__init__(cfg, store, lo, hi)
        self._kept = kept
        self._bounds = bounds  # Recomputer.bounds: the readings a full run would see

    def quarters(self, source: str) -> F64:
        """Energy per quarter hour of the month."""
        kept = self._kept.get(source)
        return super().quarters(source) if kept is None else kept[0]

    def near(self, source: str, start_ms: int) -> tuple[I64, F64]:
        """Interval energies covering the quarter hour from start_ms, as a full run has them."""
        if source not in self._kept:
            return super().near(source, start_ms)
        lo, hi = self._bounds(source, start_ms, start_ms + QUARTER_MS)
        r = self.store.load(source, lo, hi)
        if len(r) < 2:
            return r.t_ms, np.zeros(max(len(r) - 1, 0))
        return r.t_ms, interval_energy(source, r, self.cfg.metered[source]).wh
