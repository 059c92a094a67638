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

A live recompute (`shopwatt run`, every few seconds per machine) continues instead: the
machine's last piece of days is kept as computed up to a checkpoint (engine/carry.py: a
reading nothing the engine does reaches across), and only the readings from it on are
computed and added. The rows and stats it saves equal a full run's to the bit; whenever
it could not be sure of that (readings before the checkpoint, explicit jobs or splits
near it, a spot price, another process wrote the ledger, a new day), it runs in full.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np

from gateway.config import ShopConfig
from gateway.engine import CostRow, MachineReadings, compute_machine, energy_stats
from gateway.engine.carry import checkpoints, join_rows
from gateway.engine.demand import NO_DATA, QUARTER_MS
from gateway.engine.jobs import Held
from gateway.engine.localtime import day_start_ms, local_date, midnight_ms, next_midnight_ms
from gateway.engine.model import ExplicitJob
from gateway.ledger import assignments, explicit, prices, quarters
from gateway.ledger.chunks import DAY_MS, ReadingStore
from gateway.ledger.fingerprint import Fingerprints
from gateway.ledger.jobprices import priced
from gateway.ledger.quarters import DayQuarters
from gateway.ledger.rows import LedgerRow, from_cost_row, replace_rows

# The first span _pieces_from reads around an instant: a minute is a block or two of the
# store (chunks.BLOCK_MAX) at any rate up to 60 Hz.
_FIRST_SPAN_MS = 60_000


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
class _Part:
    """The engine's rows, day stats and quarter hours of a piece's days."""

    rows: list[CostRow]
    stats: list[DayStats]
    quarters: list[DayQuarters]


@dataclass(frozen=True, slots=True)
class Carry:
    """A machine's last piece of days [a, b) as computed up to a checkpoint (a stored
    reading): what the next live recompute adds to."""

    a: int
    b: int
    lo: int  # the first reading the engine saw (before a: see the module docstring)
    t_ms: int
    since_ms: int  # the reading at or before the start of the checkpoint's quarter hour
    part: _Part  # the days from a, up to the checkpoint
    held: Held | None  # the job running through the checkpoint


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

    def __init__(
        self,
        conn: sqlite3.Connection,
        store: ReadingStore,
        cfg: ShopConfig,
        carries: dict[str, Carry] | None = None,
        prints: Fingerprints | None = None,
    ) -> None:
        self._conn = conn
        self._store = store
        self._cfg = cfg
        self._tz = cfg.site.tz
        # Live recomputes only: machine -> its last piece up to a checkpoint, kept by the
        # caller from one batch to the next (and dropped when a batch fails).
        self.carries = carries
        # mark_current runs after every saved piece (every live batch): hash shop.toml's
        # settings once per machine (and ledger, when it gives its own), not once per piece.
        self._prints = Fingerprints(cfg) if prints is None else prints

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

    def _pieces_from(self, machine_id: str, t_ms: int, forward: bool) -> Iterator[MachineReadings]:
        """The stored readings after (or before) t_ms, nearest first, in spans doubling from
        a minute to a day: a counter that moves near t_ms costs a block to read, not a day."""
        span = self._store.span(machine_id)
        edge = t_ms + 1 if forward else t_ms  # the next span starts (or ends) here
        step = _FIRST_SPAN_MS
        while span is not None and (edge <= span[1] if forward else edge > span[0]):
            lo, hi = (edge, edge + step) if forward else (edge - step, edge)
            part = self._store.load(machine_id, lo, hi)
            if len(part):
                yield part
            edge = hi if forward else lo
            step = min(2 * step, DAY_MS)

    def _counter_at(self, machine_id: str, t_ms: int) -> float:
        """The counter of the reading at t_ms (NaN: none)."""
        return float(self._store.load(machine_id, t_ms, t_ms + 1).wh[0])

    def _flat_from(self, machine_id: str, t_ms: int) -> int:
        """The first reading of the counter's flat run that ends with the reading at t_ms."""
        value, start = self._counter_at(machine_id, t_ms), t_ms
        for part in [] if np.isnan(value) else self._pieces_from(machine_id, t_ms, False):
            moved = np.flatnonzero(part.wh != value)  # NaN (no counter) ends the run too
            if len(moved):
                k = int(moved[-1]) + 1
                return int(part.t_ms[k]) if k < len(part) else start
            start = int(part.t_ms[0])
        return start

    def _flat_until(self, machine_id: str, t_ms: int) -> int:
        """The first reading after t_ms whose counter moved from the one at t_ms (or the last)."""
        value, end = self._counter_at(machine_id, t_ms), t_ms
        for part in [] if np.isnan(value) else self._pieces_from(machine_id, t_ms, True):
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
        spans = explicit.spans(self._conn, machine_id)
        return self._safe(machine_id, a, spans, -1), self._safe(machine_id, b, spans, 1)

    def safe_start(self, machine_id: str, a: int) -> int:
        """The local midnight a, or an earlier one, that no job crosses."""
        return self._safe(machine_id, a, explicit.spans(self._conn, machine_id), -1)

    def _safe(self, machine_id: str, cut: int, spans: list[tuple[int, int]], way: int) -> int:
        """The local midnight cut, or the nearest one before it (way -1) or after it (+1),
        that neither an explicit job's span nor a detected job crosses."""
        while True:
            crossing = [s if way < 0 else e for s, e in spans if s < cut < e]
            wider = (min if way < 0 else max)(crossing, default=cut)
            if wider == cut and self._joined(machine_id, cut):
                wider = (
                    day_start_ms(cut - 1, self._tz) if way < 0 else next_midnight_ms(cut, self._tz)
                )
            if wider == cut:
                return cut
            cut = wider

    def compute(self, machine_id: str, a: int, b: int) -> Computed:
        """Rows and day stats of the local days [a, b) (a and b: safe local midnights)."""
        lo, hi = self.bounds(machine_id, a, b)
        window = self._store.load(machine_id, lo, hi)
        jobs = explicit.jobs_in(self._conn, machine_id, lo, hi)
        piece = _Piece(a, b, lo, hi, local_date(a, self._tz), local_date(b, self._tz))
        done = self._part(machine_id, piece, window, None, jobs)
        if self.carries is not None:
            # The machine's newest piece (no reading after it): live recomputes go on from it.
            self.carries.pop(machine_id, None)
            if len(window) and window.t_ms[-1] < b and self._continuable(machine_id, piece):
                self._checkpoint(machine_id, piece, window, None, done)
        return self._finish(machine_id, piece, done, jobs)

    def continued(self, machine_id: str, lo_ms: int, hi_ms: int) -> Computed | None:
        """The machine's newest piece, computed on from its checkpoint, when the readings
        lo_ms..hi_ms are all newer than the checkpoint and nothing else changed (see the
        module docstring); None: compute it in full."""
        carry = (self.carries or {}).get(machine_id)
        if carry is None or lo_ms <= carry.t_ms or hi_ms >= carry.b:
            return None
        hi = carry.b + self._reach_ms(machine_id)
        first_day, end_day = local_date(carry.a, self._tz), local_date(carry.b, self._tz)
        piece = _Piece(carry.a, carry.b, carry.lo, hi, first_day, end_day)
        if not self._continuable(machine_id, piece):
            return None
        # From the checkpoint's quarter hour on: its state counts the intervals before it.
        readings = self._store.load(machine_id, carry.since_ms, carry.b)
        done = self._part(machine_id, piece, readings, carry, [])
        self._checkpoint(machine_id, piece, readings, carry, done)
        return self._finish(machine_id, piece, done, [])

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

    def _continuable(self, machine_id: str, piece: _Piece) -> bool:
        """True when a piece's rows can be cut at checkpoints (engine/carry.py): detected
        jobs only (the engine sees explicit jobs, not the days they govern), none split, no
        spot price."""
        if prices.spot_series(self._cfg.tariff):
            return False
        lo, hi = piece.lo, piece.hi
        return not explicit.jobs_in(self._conn, machine_id, lo, hi) and not len(
            assignments.cuts(self._conn, machine_id, lo, hi)
        )

    def _part(
        self,
        machine_id: str,
        piece: _Piece,
        readings: MachineReadings,
        base: Carry | None,
        jobs: list[ExplicitJob],
    ) -> _Part:
        """The engine's rows, stats and quarter hours of the piece's days for these
        readings: all of the piece's (base None), or those from the base's checkpoint on
        (the readings before it only for its quarter hour's state), added to the base."""
        machine, tariff = self._cfg.machines[machine_id], self._cfg.tariff
        series = prices.tariff_slots(self._conn, tariff, piece.lo, piece.hi)
        cuts = assignments.cuts(self._conn, machine_id, piece.lo, piece.hi)
        held, numbered, k = None, Counter[date](), 0
        if base is not None:
            held, k = base.held, int(np.searchsorted(readings.t_ms, base.t_ms))
            numbered.update(
                local_date(r.start_ms, self._tz) for r in base.part.rows if r.kind == "job"
            )
        after = _after(readings, k)
        result = compute_machine(
            machine_id,
            after,
            machine,
            tariff,
            self._tz,
            jobs,
            series,
            cuts=cuts,
            held=held,
            numbered=numbered,
        )
        rows = [r for r in result.rows if piece.first_day <= r.day < piece.end_day]
        first_day = piece.first_day if base is None else local_date(base.t_ms, self._tz)
        # The intervals before the checkpoint are the base's: no energy here.
        interval_wh = np.concatenate([np.zeros(k), result.interval_wh])
        days = quarters.of_days(machine, readings, interval_wh, first_day, piece.end_day, self._tz)
        if base is None:
            stats = self._day_stats(machine_id, readings, piece.first_day, piece.end_day)
            return _Part(rows, stats, days)
        if local_date(int(after.t_ms[-1]), self._tz) == first_day:
            # All on the checkpoint's day: the engine's stats are that day's part.
            s = result.stats
            day = DayStats(
                first_day,
                s.samples - 1,
                s.metered_wh,
                s.counter_resets,
                s.implausible_jumps,
                s.gaps,
                s.gap_s,
            )
            stats = [day] if day.samples else []
        else:
            # The checkpoint's reading and the intervals up to it are the base's.
            stats = self._day_stats(machine_id, after, first_day, piece.end_day, skip=1)
        q = int((base.t_ms - midnight_ms(first_day, self._tz)) // QUARTER_MS)
        return _Part(
            join_rows(base.part.rows, rows),
            _join_stats(base.part.stats, stats),
            _join_quarters(base.part.quarters, days, first_day, q),
        )

    def _checkpoint(
        self,
        machine_id: str,
        piece: _Piece,
        readings: MachineReadings,
        base: Carry | None,
        done: _Part,
    ) -> None:
        """Keep the piece up to its newest checkpoint among the readings (all of the
        piece's, or those from the base's on) for the next live recompute.

        done: the piece computed with all of these readings (what it is up to the last)."""
        assert self.carries is not None
        held_from = base.held.start_ms if base and base.held else None
        found, through = checkpoints(readings, self._cfg.machines[machine_id], held_from)
        t = readings.t_ms
        newer = t[found] > (base.t_ms if base else t[0])
        found, through = found[newer], through[newer]
        if not len(found):
            return  # the base stays (the next readings may bring one)
        k = int(found[-1])
        part = done
        if k < len(t) - 1:
            head = MachineReadings(t[: k + 1], readings.watts[: k + 1], readings.wh[: k + 1])
            part = self._part(machine_id, piece, head, base, [])
        held = None
        if through[-1]:
            # The job running through it, unless still too short to be one.
            job = next((r for r in part.rows if r.kind == "job" and r.end_ms == t[k]), None)
            if job is None:
                return
            held = Held(job.start_ms, job.job_id)
        # The reading that opens the first interval ending in the checkpoint's quarter hour.
        quarter = int(t[k]) - int(t[k]) % QUARTER_MS  # local quarter hours are UTC ones
        since = int(t[max(int(np.searchsorted(t, quarter, side="right")) - 1, 0)])
        self.carries[machine_id] = Carry(piece.a, piece.b, piece.lo, int(t[k]), since, part, held)

    def _finish(
        self, machine_id: str, piece: _Piece, done: _Part, jobs: list[ExplicitJob]
    ) -> Computed:
        """The engine's part of a piece as the ledger keeps it: rows in cents, with the
        parts explicit jobs counted, who each job was for and what it costs them."""
        tariff = self._cfg.tariff
        counted = {j.job_id: j.parts for j in jobs if j.parts}
        kept = [
            _with_parts(from_cost_row(r, tariff.band_names, tariff.rates), counted)
            for r in done.rows
        ]
        # Who each job was for (assignments, over what its job events said), then what it
        # costs them (their price list).
        said = assignments.within(self._conn, machine_id, piece.lo, piece.hi)
        return Computed(
            machine=machine_id,
            first_day=piece.first_day,
            end_day=piece.end_day,
            rows=priced(self._conn, self._cfg.pricing, assignments.apply(kept, said)),
            stats=done.stats,
            quarters=done.quarters,
        )

    def _day_stats(
        self,
        machine_id: str,
        window: MachineReadings,
        first_day: date,
        end_day: date,
        skip: int = 0,
    ) -> list[DayStats]:
        """The engine's stats per local day, each day's intervals counted on the day they end
        (skip: the first readings only begin the next interval, counted elsewhere)."""
        machine = self._cfg.machines[machine_id]
        days = [first_day + timedelta(days=k) for k in range((end_day - first_day).days)]
        edges = [midnight_ms(d, self._tz) for d in [*days, end_day]]
        idx = np.maximum(np.searchsorted(window.t_ms, edges), skip)
        found = []
        for k, day in enumerate(days):
            a, b = int(idx[k]), int(idx[k + 1])
            if a >= b:
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
            (machine_id, self._prints(machine_id)),
        )


@dataclass(frozen=True, slots=True)
class _Piece:
    """Safe local midnights [a, b), their local days, the readings the engine sees [lo, hi)."""

    a: int
    b: int
    lo: int
    hi: int
    first_day: date
    end_day: date


def _after(r: MachineReadings, k: int) -> MachineReadings:
    """The readings from the k-th on."""
    return MachineReadings(r.t_ms[k:], r.watts[k:], r.wh[k:]) if k else r


def _join_quarters(
    head: list[DayQuarters], tail: list[DayQuarters], day: date, q: int
) -> list[DayQuarters]:
    """Quarter hours up to a checkpoint and from it on (it lies in quarter hour q of day):
    energies added, states from the tail's from q on (it saw the readings of quarter q)."""
    later = {d.day: d for d in tail}
    joined = []
    for d in head:
        t = later.pop(d.day, None)
        if t is None:
            joined.append(d)
            continue
        states = np.concatenate([d.states[:q], t.states[q:]]) if d.day == day else t.states
        wh = d.wh + t.wh
        if wh.any() or (states != NO_DATA).any():  # what of_days keeps of a day
            joined.append(DayQuarters(d.day, wh, states))
    return joined + list(later.values())


def _join_stats(head: list[DayStats], tail: list[DayStats]) -> list[DayStats]:
    """Day stats up to a checkpoint and from it on: its day's two parts added."""
    later = {s.day: s for s in tail}
    joined = [_added_stats(s, later.pop(s.day)) if s.day in later else s for s in head]
    return joined + list(later.values())


def _added_stats(a: DayStats, b: DayStats) -> DayStats:
    # gap_s are whole ms / 1000 (energy.interval_energy): added as ms, as one run would.
    gap_ms = round(a.gap_s * 1000.0) + round(b.gap_s * 1000.0)
    return DayStats(
        a.day,
        a.samples + b.samples,
        a.metered_wh + b.metered_wh,  # exact: energy.exact_wh
        a.counter_resets + b.counter_resets,
        a.implausible_jumps + b.implausible_jumps,
        a.gaps + b.gaps,
        gap_ms / 1000.0,
    )


def _with_parts(row: LedgerRow, counted: dict[str, int]) -> LedgerRow:
    """An explicit job's row with the parts its stop event counted."""
    parts = counted.get(row.job_id) if row.kind == "job" else None
    return replace(row, amounts=replace(row.amounts, parts=parts)) if parts else row
