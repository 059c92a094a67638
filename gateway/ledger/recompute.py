"""Recompute one machine's rows over whole local days, exactly as a full run would.

A range [A, B) of local midnights is recomputed with the engine and replaces the stored
rows of its days. Two things make a partial run equal to a full one:
- the cuts A and B are moved outwards until no job can cross them: no explicit-job span
  crosses a cut, and the last running reading before it and the first running reading
  after it are further apart than the engine would join (merge_gap_s or max_gap_s);
- the engine sees two readings before A (so the interval crossing A is split at midnight
  and its counter checked as in a full run) and the readings until merge_gap_s after B
  (so "open", i.e. a job that may still grow, is decided with the same data). Rows
  outside [A, B) are dropped.
- a counter step is shared with the readings since the counter last moved (a coarse
  meter's counter may stand for hours): the engine sees the whole flat run of the
  counter around each cut, and new readings recompute every day of the run they close.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np

from gateway.config import ShopConfig
from gateway.engine import MachineReadings, compute_machine, energy_stats
from gateway.engine.localtime import day_start_ms, local_date, midnight_ms, next_midnight_ms
from gateway.ledger import assignments, explicit, prices, quarters
from gateway.ledger.chunks import DAY_MS, ReadingStore
from gateway.ledger.fingerprint import fingerprint
from gateway.ledger.jobprices import priced
from gateway.ledger.quarters import DayQuarters
from gateway.ledger.rows import LedgerRow, from_cost_row, replace_rows


@dataclass(frozen=True, slots=True)
class DayStats:
    """The engine's repairs for the intervals that end on one local day."""

    day: date
    samples: int
    metered_wh: float
    counter_resets: int
    implausible_jumps: int
    gaps: int
    gap_s: float


@dataclass(frozen=True, slots=True)
class Computed:
    """Rows and stats of one machine for the local days [first_day, end_day)."""

    machine: str
    first_day: date
    end_day: date
    rows: list[LedgerRow]
    stats: list[DayStats]
    quarters: list[DayQuarters]  # energy and state per quarter hour, per local day


class Recomputer:
    """Widens ranges to safe cuts, runs the engine, replaces the stored rows."""

    def __init__(self, conn: sqlite3.Connection, store: ReadingStore, cfg: ShopConfig) -> None:
        self._conn = conn
        self._store = store
        self._cfg = cfg
        self._tz = cfg.site.tz
        # mark_current runs after every saved piece (every live batch): hash shop.toml's
        # settings once per machine, not once per piece.
        self._prints: dict[str, str] = {}

    def _reach_ms(self, machine_id: str) -> int:
        """How far apart two running readings can be and still be joined by the engine."""
        m = self._cfg.machines[machine_id]
        return int(max(m.merge_gap_s, m.max_gap_s) * 1000)

    def _joined(self, machine_id: str, cut: int) -> bool:
        """True when a job could run across the instant `cut`."""
        reach = self._reach_ms(machine_id)
        near = self._store.load(machine_id, cut - reach, cut + reach + 1)
        # Running = strictly above run_above_w (shop.toml's definition, as the engine uses it).
        t = near.t_ms[near.watts > self._cfg.machines[machine_id].run_above_w]
        before, after = t[t < cut], t[t >= cut]
        return len(before) > 0 and len(after) > 0 and int(after[0] - before[-1]) <= reach

    def _days_from(self, machine_id: str, t_ms: int, forward: bool) -> Iterator[MachineReadings]:
        """The stored readings after (or before) t_ms, a UTC day at a time, nearest first."""
        span = self._store.span(machine_id)
        edge = t_ms + 1 if forward else t_ms  # the next day starts (or ends) here
        while span is not None and (edge <= span[1] if forward else edge > span[0]):
            if forward:
                lo, hi = edge, (edge // DAY_MS + 1) * DAY_MS
            else:
                lo, hi = (edge - 1) // DAY_MS * DAY_MS, edge
            part = self._store.load(machine_id, lo, hi)
            if len(part):
                yield part
            edge = hi if forward else lo

    def _counter_at(self, machine_id: str, t_ms: int) -> float:
        """The counter of the reading at t_ms (NaN: none)."""
        return float(self._store.load(machine_id, t_ms, t_ms + 1).wh[0])

    def _flat_from(self, machine_id: str, t_ms: int) -> int:
        """The first reading of the counter's flat run that ends with the reading at t_ms."""
        value, start = self._counter_at(machine_id, t_ms), t_ms
        for part in [] if np.isnan(value) else self._days_from(machine_id, t_ms, False):
            moved = np.flatnonzero(part.wh != value)  # NaN (no counter) ends the run too
            if len(moved):
                k = int(moved[-1]) + 1
                return int(part.t_ms[k]) if k < len(part) else start
            start = int(part.t_ms[0])
        return start

    def _flat_until(self, machine_id: str, t_ms: int) -> int:
        """The first reading after t_ms whose counter moved from the one at t_ms (or the last)."""
        value, end = self._counter_at(machine_id, t_ms), t_ms
        for part in [] if np.isnan(value) else self._days_from(machine_id, t_ms, True):
            moved = np.flatnonzero(part.wh != value)
            if len(moved):
                return int(part.t_ms[moved[0]])
            end = int(part.t_ms[-1])
        return end

    def widen(self, machine_id: str, lo_ms: int, hi_ms: int) -> tuple[int, int]:
        """Local midnights A <= lo_ms, B > hi_ms that no job crosses.

        The readings next to the changed ones are included too: the intervals that join
        them to the changed readings changed as well, and so did the counter's flat runs
        they end or begin (the share of a counter step each interval of the run gets).
        """
        prev = self._store.last_before(machine_id, lo_ms)
        nxt = self._store.first_from(machine_id, hi_ms + 1)
        lo = lo_ms if prev is None else self._flat_from(machine_id, prev)
        hi = hi_ms if nxt is None else self._flat_until(machine_id, nxt)
        return self.safe_cuts(
            machine_id, day_start_ms(lo, self._tz), next_midnight_ms(hi, self._tz)
        )

    def safe_cuts(self, machine_id: str, a: int, b: int) -> tuple[int, int]:
        """Move the local midnights a and b outwards until no job can cross them."""
        return self.safe_start(machine_id, a), self._safe_end(machine_id, b)

    def safe_start(self, machine_id: str, a: int) -> int:
        """The local midnight a, or an earlier one, that no job crosses."""
        spans = explicit.spans(self._conn, machine_id)
        while True:
            wider = min([s for s, e in spans if s < a < e], default=a)
            if wider == a and self._joined(machine_id, a):
                wider = day_start_ms(a - 1, self._tz)
            if wider == a:
                return a
            a = wider

    def _safe_end(self, machine_id: str, b: int) -> int:
        """The local midnight b, or a later one, that no job crosses."""
        spans = explicit.spans(self._conn, machine_id)
        while True:
            wider = max([e for s, e in spans if s < b < e], default=b)
            if wider == b and self._joined(machine_id, b):
                wider = next_midnight_ms(b, self._tz)
            if wider == b:
                return b
            b = wider

    def bounds(self, machine_id: str, a: int, b: int) -> tuple[int, int]:
        """[lo, hi): the readings the engine needs to compute [a, b) as a full run would."""
        # The counter's flat run that ends with the interval crossing a, and two readings
        # before it: the step that began the run and the one before it, which the engine
        # needs to tell a one-reading counter glitch from a reset.
        prev = self._store.last_before(machine_id, a)
        lo = a if prev is None else self._flat_from(machine_id, prev)
        for _ in range(2):
            prev = self._store.last_before(machine_id, lo)
            lo = lo if prev is None else prev
        nxt = self._store.first_from(machine_id, b + self._reach_ms(machine_id))
        hi = b + self._reach_ms(machine_id) if nxt is None else nxt + 1
        # ... and on after b to the step that ends the flat run crossing b, and one more
        # reading (is that step a glitch?).
        last = self._store.last_before(machine_id, b)
        if last is not None:
            step = self._flat_until(machine_id, last)
            after = self._store.first_from(machine_id, step + 1)
            hi = max(hi, (step if after is None else after) + 1)
        return lo, hi

    def compute(self, machine_id: str, a: int, b: int) -> Computed:
        """Rows and day stats of the local days [a, b) (a and b: safe local midnights)."""
        machine, tariff = self._cfg.machines[machine_id], self._cfg.tariff
        lo, hi = self.bounds(machine_id, a, b)
        window = self._store.load(machine_id, lo, hi)
        series = prices.tariff_slots(self._conn, tariff, lo, hi)
        # Explicit jobs take their spans, detection runs on the rest (the engine's rule).
        jobs = explicit.jobs_in(self._conn, machine_id, lo, hi)
        cuts = assignments.cuts(self._conn, machine_id, lo, hi)
        result = compute_machine(
            machine_id, window, machine, tariff, self._tz, jobs, series, cuts=cuts
        )
        first_day, end_day = local_date(a, self._tz), local_date(b, self._tz)
        names = tariff.band_names
        counted = {j.job_id: j.parts for j in jobs if j.parts}
        kept = [
            _with_parts(from_cost_row(r, names, tariff.rates), counted)
            for r in result.rows
            if first_day <= r.day < end_day
        ]
        # Who each job was for (assignments, over what its job events said), then what it
        # costs them (their price list).
        said = assignments.within(self._conn, machine_id, lo, hi)
        return Computed(
            machine=machine_id,
            first_day=first_day,
            end_day=end_day,
            rows=priced(self._conn, self._cfg.pricing, assignments.apply(kept, said)),
            stats=self._day_stats(machine_id, window, first_day, end_day),
            quarters=quarters.of_days(
                machine, window, result.interval_wh, first_day, end_day, self._tz
            ),
        )

    def _day_stats(
        self, machine_id: str, window: MachineReadings, first_day: date, end_day: date
    ) -> list[DayStats]:
        """The engine's stats per local day, each day's intervals counted on the day they end."""
        machine = self._cfg.machines[machine_id]
        days = [first_day + timedelta(days=k) for k in range((end_day - first_day).days)]
        edges = [midnight_ms(d, self._tz) for d in [*days, end_day]]
        idx = np.searchsorted(window.t_ms, edges)
        found = []
        for k, day in enumerate(days):
            a, b = int(idx[k]), int(idx[k + 1])
            if a == b:
                continue
            start = max(a - 1, 0)  # the reading before the day opens its first interval
            part = MachineReadings(window.t_ms[start:b], window.watts[start:b], window.wh[start:b])
            # The stats come from the energy step alone: no jobs, calendar or prices needed.
            s = energy_stats(machine_id, part, machine)
            found.append(
                DayStats(
                    day,
                    b - a,
                    s.metered_wh,
                    s.counter_resets,
                    s.implausible_jumps,
                    s.gaps,
                    s.gap_s,
                )
            )
        return found

    def save(self, computed: Computed) -> None:
        """Replace the stored rows and stats of the computed days; record the config used.

        Only what changed is written (see rows.replace_rows): a machine's day is saved
        again every few seconds while it runs.
        """
        days = (computed.machine, computed.first_day.isoformat(), computed.end_day.isoformat())
        replace_rows(self._conn, "machine = ? AND day >= ? AND day < ?", days, computed.rows)
        stored = {
            found["day"]: tuple(found)
            for found in self._conn.execute(
                "SELECT * FROM day_stats WHERE machine = ? AND day >= ? AND day < ?", days
            )
        }
        new = [
            (
                computed.machine,
                s.day.isoformat(),
                s.samples,
                s.metered_wh,
                s.counter_resets,
                s.implausible_jumps,
                s.gaps,
                s.gap_s,
            )
            for s in computed.stats
        ]
        gone = stored.keys() - {s[1] for s in new}
        self._conn.executemany(
            "DELETE FROM day_stats WHERE machine = ? AND day = ?",
            [(computed.machine, day) for day in gone],
        )
        self._conn.executemany(
            "INSERT OR REPLACE INTO day_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [s for s in new if stored.get(s[1]) != s],
        )
        quarters.save(self._conn, computed.machine, days[1], days[2], computed.quarters)
        self.mark_current(computed.machine)

    def mark_current(self, machine_id: str) -> None:
        """Record that the machine's rows follow shop.toml's costing settings as they are."""
        self._conn.execute(
            # Unchanged (every live recompute): no write at all, the page stays clean.
            "INSERT INTO machines VALUES (?, ?) ON CONFLICT (machine) DO UPDATE SET "
            "fingerprint = excluded.fingerprint WHERE fingerprint != excluded.fingerprint",
            (machine_id, self._fingerprint(machine_id)),
        )

    def _fingerprint(self, machine_id: str) -> str:
        if machine_id not in self._prints:
            self._prints[machine_id] = fingerprint(self._cfg, machine_id)
        return self._prints[machine_id]


def _with_parts(row: LedgerRow, counted: dict[str, int]) -> LedgerRow:
    """An explicit job's row with the parts its stop event counted."""
    parts = counted.get(row.job_id) if row.kind == "job" else None
    return replace(row, amounts=replace(row.amounts, parts=parts)) if parts else row
