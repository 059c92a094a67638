"""The ledger's operations: replay, recompute, close, and what export and status read.

Every operation that writes runs in one SQLite transaction and records itself in the
audit trail inside it: a failed run leaves the file exactly as it was.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.config import LEDGER_FILE, ShopConfig
from gateway.engine.demand import LiveDemand
from gateway.engine.localtime import (
    FIRST_MS,
    LAST_MS,
    day_start_ms,
    iso_utc,
    local_date,
    midnight_ms,
    next_midnight_ms,
    period_dates,
    period_ms,
    period_of,
    periods_between,
    utc_ms,
)
from gateway.engine.model import ExplicitJob, MachineReadings, PriceSlots, ReadingRows
from gateway.errors import LedgerError
from gateway.ledger import assignments, customers, explicit, members, periods, prices, quarters
from gateway.ledger.audit import Entry, recent, record
from gateway.ledger.bill import (
    Bill,
    Charges,
    PeakWatch,
    RowCharges,
    compute_bill,
    frozen_bill,
    frozen_figures,
    month_energy,
)
from gateway.ledger.chunks import DAY_MS, Merged, ReadingStore
from gateway.ledger.fingerprint import Fingerprints, changed_from
from gateway.ledger.live import LiveState, load_state, save_state
from gateway.ledger.machines import check_machine
from gateway.ledger.recompute import Carry, Computed, Recomputer
from gateway.ledger.rows import LedgerRow, select
from gateway.ledger.schema import connect, transaction
from gateway.ledger.staging import Staged, merge_staged, stage

# (what was just done, machines done, machines in all): drives the CLI's progress bar.
Progress = Callable[[str, int, int], None]


_CACHED_MS = 7 * DAY_MS  # decoded blocks a recompute keeps while it walks day by day


class ReadingsSource(Protocol):
    """A readings file read batch by batch, in file order (a bad row raises mid-way)."""

    @property
    def path(self) -> Path:
        """The file, for the audit trail."""

    @property
    def sha256(self) -> str:
        """Of the file as stored; complete once batches() has been read to the end."""

    def batches(self) -> Iterator[ReadingRows]:
        """Every row; `machine` indexes the shop's machines in shop.toml order."""


class JobsSource(Protocol):
    """An operator's job list: jobs per machine, sorted by start, and the file it came from."""

    @property
    def path(self) -> Path:
        """The file, for messages and the audit trail."""

    @property
    def sha256(self) -> str:
        """Of the file as stored."""

    @property
    def jobs(self) -> Mapping[str, Sequence[ExplicitJob]]:
        """Machine -> its jobs."""

    @property
    def lines(self) -> Mapping[tuple[str, str], int]:
        """(machine, job id) -> the file's line, for messages."""


def os_user() -> str:
    """The OS user running this command (the audit trail's `who` of a CLI change)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def _now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay did."""

    rows: int  # data rows in readings.csv
    added: int  # readings new to the ledger
    duplicates: int  # rows repeating an earlier row of the same file: counted once
    repeated: int  # rows already in the ledger (a file replayed again): changed nothing
    conflicts: int  # of duplicates and repeats, rows with other values than the kept one
    jobs: int  # jobs read from jobs.csv
    recomputed: dict[str, tuple[str, str]]  # machine -> first and last local day recomputed
    adjustments: int  # pending adjustment rows of closed periods after the replay


@dataclass(frozen=True, slots=True)
class PricesImported:
    """What one `shopwatt prices import` did."""

    series: str
    slots: int
    replaced: int  # stored slots of the series in the new slots' span, now replaced
    first_ms: int  # start of the first slot, end of the last
    end_ms: int
    recomputed: dict[str, tuple[str, str]]  # machine -> first and last local day recomputed
    adjustments: int  # pending adjustment rows of closed periods afterwards


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one live ingest did."""

    added: int  # readings new to the ledger
    repeated: int  # readings whose time was already stored: changed nothing
    conflicts: int  # of those, readings with other values than the stored one
    jobs: int  # live jobs stored
    rows: list[LedgerRow]  # the recomputed rows (every row of the recomputed days)
    adjustments: int  # pending adjustment rows of closed periods after the ingest
    added_ranges: dict[str, tuple[int, int]]  # machine -> first and last reading added


@dataclass(frozen=True, slots=True)
class Dropped:
    """What dropping a machine's readings in a time range did (or, previewed, would do)."""

    machine: str
    readings: int
    first_ms: int | None  # earliest and latest dropped reading; None when none was found
    last_ms: int | None
    metered_wh: float  # metered energy the ledger no longer has (its days' metered_wh)
    sha256: str  # of the dropped readings, as readings_sha256() hashes them
    recomputed: tuple[str, str] | None  # first and last local day recomputed
    adjustments: int  # pending adjustment rows of closed periods afterwards


class _Preview(Exception):
    """Raised inside a transaction to roll it back and hand back what it would have done."""

    def __init__(self, dropped: Dropped) -> None:
        super().__init__("preview")
        self.dropped = dropped


@dataclass(frozen=True, slots=True)
class Selection:
    """Rows of a date range as the export prints them."""

    rows: list[LedgerRow]
    open_jobs: int  # jobs still running at the end of the data in the range: not exported
    band_names: list[str]  # tariff band order, plus any band only older frozen rows carry
    periods: dict[str, bool] = field(default_factory=dict)  # the range's months: closed?

    def status(self) -> str:
        """'closed', 'open', or which months are which (for a title block)."""
        closed = [p for p, c in self.periods.items() if c]
        if len(closed) == len(self.periods):
            return "closed"
        if not closed:
            return "open"
        still = [p for p, c in self.periods.items() if not c]
        return f"closed {', '.join(closed)}; open {', '.join(still)}"

    def only(self, customer: str | None = None, machine: str | None = None) -> Selection:
        """The rows of one customer (id) and/or one machine (open_jobs: still the range's)."""
        rows = [
            r
            for r in self.rows
            if (customer is None or r.customer == customer)
            and (machine is None or r.machine == machine)
        ]
        return replace(self, rows=rows)


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """One machine's data and everything that was dropped or repaired on the way."""

    machine: str
    readings: int
    first_ms: int | None
    last_ms: int | None
    metered_wh: float
    counters: dict[str, int]  # replay counters and the engine's repairs
    open_jobs: int
    config_current: bool  # rows were computed with the shop.toml as it is now
    changed_from: date | None = None  # not current: first local day that may differ


@dataclass(frozen=True, slots=True)
class Status:
    """The ledger at a glance."""

    path: Path
    machines: list[MachineStatus]
    closed: dict[str, tuple[str, str]]
    pending_adjustments: int
    audit: list[Entry] = field(default_factory=list)
    # Tariff version id -> first and last local day of the ledger's rows it priced.
    tariff_versions: dict[str, list[str]] = field(default_factory=dict)
    # Assignments and customers a person must look at (ambiguous, orphaned, unknown).
    unsettled: list[str] = field(default_factory=list)


class Ledger:
    """The ledger of one shop (storage_dir/ledger.sqlite) seen through one shop.toml."""

    def __init__(
        self, cfg: ShopConfig, *, who: str | None = None, clock: Callable[[], str] = _now_utc
    ) -> None:
        self.cfg = cfg
        self.path = cfg.storage_dir / LEDGER_FILE
        self._who = who or os_user()
        self._clock = clock
        self._held: sqlite3.Connection | None = None
        # What ingest() keeps from one batch to the next, valid while no other connection
        # wrote the ledger: each machine's newest piece up to a checkpoint (live recomputes,
        # ledger/recompute.py) and its newest stored time (ReadingStore.append).
        self._carries: dict[str, Carry] = {}
        self._newest: dict[str, int] = {}
        self._version = -1  # PRAGMA data_version when they were made
        self._prints = Fingerprints(cfg)

    def disconnect(self) -> None:
        """Close the connection that ingest() keeps open (if any)."""
        if self._held is not None:
            self._held.close()
            self._held = None

    def _held_conn(self) -> sqlite3.Connection:
        """ingest()'s connection, kept open from one batch to the next: closing a ledger's
        last connection copies the write-ahead log into the file, so every page a batch
        touched would be written twice, every batch; open, the WAL is checkpointed every
        thousand pages, each page once however often it changed in between."""
        if self._held is None:
            conn = connect(self.path, create=True)
            # The caller acknowledges the readings to the broker once ingest() returns, so
            # the commit must survive a power cut too (NORMAL in WAL mode may lose the last).
            conn.execute("PRAGMA synchronous = FULL")
            self._held = conn
            # data_version compares within one connection only: a new one knows nothing.
            self._version = -1
        return self._held

    @contextmanager
    def _open(
        self, *, create: bool = False, readonly: bool = False
    ) -> Iterator[sqlite3.Connection]:
        # Only the call that creates the ledger may remove it again: a reader that finds no
        # ledger must never delete one that another process (shopwatt run) creates meanwhile.
        creating = create and not self.path.exists()
        try:
            with closing(connect(self.path, create=create, readonly=readonly)) as conn:
                yield conn
        except BaseException:
            if creating:  # a failed first run leaves no (empty) ledger behind
                for suffix in ("", "-wal", "-shm"):
                    self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            raise

    def _entry(self, action: str, detail: Mapping[str, object]) -> Entry:
        return Entry(self._clock(), self._who, action, dict(detail))

    def record(self, action: str, detail: Mapping[str, object]) -> None:
        """An audit entry on its own, under this ledger's user (a change made elsewhere,
        e.g. a job event sent to the broker: the trail says who pressed the button)."""
        with self._open(create=True) as conn, transaction(conn):
            record(conn, self._entry(action, detail))

    def _stale(self, conn: sqlite3.Connection) -> dict[str, date]:
        """Machines whose rows were computed with other costing settings than shop.toml's,
        each with the first local day that may differ (date.min: every day)."""
        stored = conn.execute("SELECT machine, fingerprint FROM machines ORDER BY machine")
        stale = {}
        for m in stored:
            if m["machine"] not in self.cfg.machines:
                raise LedgerError(
                    f"{self.path}: machine {m['machine']!r} has data in the ledger but is not "
                    f"in {self.cfg.source}; put its [[machine]] back (the ledger keeps readings)"
                )
            since = changed_from(m["fingerprint"], self._prints(m["machine"]))
            if since is not None:
                stale[m["machine"]] = since
        return stale

    def _require_current(self, conn: sqlite3.Connection) -> None:
        stale = self._stale(conn)
        if stale:
            which = ", ".join(m if d == date.min else f"{m} (from {d})" for m, d in stale.items())
            raise LedgerError(
                f"{self.path}: rows of {which} were computed with other costing "
                f"settings than {self.cfg.source} now has (tariff, time zone, currency or "
                "machine); run `shopwatt recompute` first (closed months get adjustment rows)"
            )

    # ------------------------------------------------------------------ writes

    def replay(
        self,
        readings: ReadingsSource | None,
        jobs: JobsSource | None = None,
        progress: Progress | None = None,
        create_customers: bool = False,
    ) -> Replayed:
        """Merge readings and explicit jobs, recompute what they touch, adjust closed periods.

        The readings are staged on disk while they are read, so a bad row anywhere leaves
        the ledger as it was and a file of any length needs the memory of one batch. A job's
        customer must be known (create_customers: unknown names are added).
        """
        with self._open(create=True) as conn, transaction(conn):
            self._require_current(conn)
            owned = _own_customers(conn, jobs, create_customers, self._entry) if jobs else {}
            store = ReadingStore(conn)
            # A replay writes and reads back blocks of many days in one transaction: with
            # SQLite's default 2 MB page cache it spilled and re-read pages all the time
            # (a 12M-row replay took twice as long); 32 MB is bounded and enough.
            conn.execute("PRAGMA cache_size = -32768")
            rows = stage(conn, readings.batches()) if readings else 0
            staged = dict(merge_staged(conn, store, list(self.cfg.metered))) if readings else {}
            for machine, s in staged.items():
                counts = {
                    "duplicate_rows": s.duplicates,
                    "repeated_rows": s.merged.repeated,
                    "conflicting_rows": _conflicts(s),
                }
                _count(conn, machine, counts)
            # A site meter's readings are stored, never turned into rows.
            touched = _touched({m: s.merged for m, s in staged.items() if m in self.cfg.machines})
            tz = self.cfg.site.tz
            span = explicit.store(conn, owned, str(jobs.path), tz) if jobs else None
            if jobs and span:
                _widen(touched, owned, span)
            computed = self._recompute(conn, store, touched, progress)
            result = Replayed(
                rows=rows,
                added=sum(s.merged.added for s in staged.values()),
                duplicates=sum(s.duplicates for s in staged.values()),
                repeated=sum(s.merged.repeated for s in staged.values()),
                conflicts=sum(_conflicts(s) for s in staged.values()),
                jobs=sum(len(j) for j in jobs.jobs.values()) if jobs else 0,
                recomputed=_spans(computed),
                adjustments=_adjust(conn, computed),
            )
            detail = {
                "input": _file(readings.path, readings.sha256) if readings else None,
                "jobs_file": _file(jobs.path, jobs.sha256) if jobs else None,
                **asdict(result),
                "priced_by": priced_by(self.cfg, result.recomputed.values()),
            }
            record(conn, self._entry("replay", detail))
        return result

    def import_prices(
        self, series: str, slots: PriceSlots, path: Path, sha256: str
    ) -> PricesImported:
        """Store a price series' slots and recompute the days they price (docs/tariffs.md)."""
        lo, hi = int(slots.start_ms[0]), int(slots.end_ms[-1])
        with self._open(create=True) as conn, transaction(conn):
            self._require_current(conn)
            replaced = prices.store(conn, series, slots)
            store = ReadingStore(conn)
            touched: dict[str, tuple[int, int]] = {}
            if series in prices.spot_series(self.cfg.tariff):
                for machine in self.cfg.machines:
                    span = store.span(machine)
                    if span is not None and span[0] < hi and span[1] >= lo:
                        touched[machine] = (max(lo, span[0]), min(hi - 1, span[1]))
            computed = self._recompute(conn, store, touched)
            result = PricesImported(
                series=series,
                slots=len(slots.start_ms),
                replaced=replaced,
                first_ms=lo,
                end_ms=hi,
                recomputed=_spans(computed),
                adjustments=_adjust(conn, computed),
            )
            detail = {"input": _file(path, sha256), **asdict(result)}
            record(conn, self._entry("prices", detail))
        return result

    def ingest(
        self,
        batches: Mapping[str, MachineReadings],
        source: str,
        jobs: Mapping[str, Sequence[Sequence[ExplicitJob]]] | None = None,
        state: LiveState | None = None,
        recompute: Mapping[str, tuple[int, int]] | None = None,
        before_commit: Callable[[list[LedgerRow]], None] | None = None,
    ) -> Ingested:
        """Merge live readings (and live jobs) as replay does, in one durable transaction.

        `batches`: per machine, sorted readings with unique times. `jobs`: per machine,
        groups of live jobs, each group every job on the local days it covers (it replaces
        the stored jobs of those days, as a jobs.csv does). `state`: the service's state
        (ledger/live.py; e.g. the MQTT input's dedup marks), committed with the readings or
        not at all.
        `recompute`: the machines and time ranges to recompute (default: what this batch
        added). A caller that batches often may recompute less often: the rows follow as
        soon as it passes the ranges it collected from `Ingested.added_ranges`.
        `before_commit`: called with the recomputed rows once all is written, before the
        commit (the service puts them in its outbox then: docs/gateway.md).
        """
        conn = self._held_conn()
        # Kept again once this batch commits.
        carries, self._carries = self._carries, {}
        newest, self._newest = self._newest, {}
        with transaction(conn):
            # Another process wrote the ledger (a replay, a split, a dropped reading...):
            # what the carries hold may be out of date, so every machine is computed in
            # full once; and rows may have gone stale (this Ledger's shop.toml is fixed,
            # and its own writes keep them current). Read under the write lock: no other
            # write can come between.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                carries, newest = {}, {}
                self._require_current(conn)
            store = ReadingStore(conn)
            merged = store.append(batches, newest)
            for machine, m in merged.items():
                _count(
                    conn,
                    machine,
                    {"repeated_rows": m.repeated, "conflicting_rows": m.conflicts},
                )
            # A site meter's readings are stored, never turned into rows (as in replay).
            added_ranges = _touched({m: x for m, x in merged.items() if m in self.cfg.machines})
            touched = dict(added_ranges if recompute is None else recompute)
            for machine, groups in (jobs or {}).items():
                for group in groups:
                    named = [replace(j, customer=_job_customer(conn, j)) for j in group]
                    live = {machine: named}
                    span = explicit.store(conn, live, source, self.cfg.site.tz)
                    if span:
                        _widen(touched, live, span)
            computed = self._recompute(conn, store, touched, carries=carries)
            changed = {p for c in computed for p in periods_between(c.first_day, c.end_day)}
            result = Ingested(
                added=sum(m.added for m in merged.values()),
                repeated=sum(m.repeated for m in merged.values()),
                conflicts=sum(m.conflicts for m in merged.values()),
                jobs=sum(len(g) for groups in (jobs or {}).values() for g in groups),
                rows=[r for c in computed for r in c.rows],
                adjustments=periods.refresh_adjustments(conn, changed),
                added_ranges=added_ranges,
            )
            store.compact()
            if state is not None:
                save_state(conn, state)
            # Readings arrive every few seconds: an audit entry each time would bury the
            # trail (and wear the SD card). Jobs and corrections of closed months are
            # what an auditor looks for; the readings are counted in `status`.
            if result.jobs or result.adjustments:
                detail = {"source": source, "jobs": result.jobs, "added": result.added}
                record(conn, self._entry("ingest", detail | {"adjustments": result.adjustments}))
            if before_commit is not None:
                before_commit(result.rows)
        self._carries, self._newest, self._version = carries, newest, version
        return result

    def _recompute(
        self,
        conn: sqlite3.Connection,
        store: ReadingStore,
        touched: Mapping[str, tuple[int, int]],
        progress: Progress | None = None,
        carries: dict[str, Carry] | None = None,
    ) -> list[Computed]:
        """Recompute and save each touched machine over the safe local days around its range
        (carries: live, go on from each machine's checkpoint where it can)."""
        recomputer = Recomputer(conn, store, self.cfg, carries, self._prints)
        computed = []
        for k, (machine, (lo, hi)) in enumerate(touched.items(), start=1):
            done = recomputer.continued(machine, lo, hi)
            if done is not None:
                recomputer.save(done)
                computed.append(done)
                continue
            a, b = recomputer.widen(machine, lo, hi)
            computed += _in_pieces(recomputer, store, machine, a, b, self.cfg.site.tz)
            store.forget()  # one machine's days in memory at a time, not every touched one's
            if progress:
                progress(f"computed {machine}", k, len(touched))
        return computed

    def recompute(self, everything: bool = False) -> dict[str, tuple[str, str]]:
        """Recompute machines whose costing settings changed (or all); adjust closed periods.

        A new or changed [[tariff.version]] recomputes only the days from its valid_from on:
        earlier days keep the prices they had.
        """
        tz = self.cfg.site.tz
        with self._open() as conn, transaction(conn):
            stale = self._stale(conn)
            known = [m["machine"] for m in conn.execute("SELECT machine FROM machines")]
            todo = sorted(known if everything else stale)
            if not todo:  # nothing changes, so nothing is audited (a change of nothing)
                return {}
            store = ReadingStore(conn)
            recomputer = Recomputer(conn, store, self.cfg, prints=self._prints)
            computed: list[Computed] = []
            for machine in todo:
                since = date.min if everything else stale[machine]
                extent = _extent(store.span(machine), explicit.spans(conn, machine))
                if since == date.min:
                    # Days may shift (another time zone): nothing of the old rows may survive.
                    drop_from, a = since, day_start_ms(extent[0], tz) if extent else 0
                else:
                    a = recomputer.safe_start(machine, midnight_ms(since, tz))
                    drop_from = local_date(a, tz)
                where = (machine, drop_from.isoformat())
                conn.execute("DELETE FROM rows WHERE machine = ? AND day >= ?", where)
                conn.execute("DELETE FROM day_stats WHERE machine = ? AND day >= ?", where)
                conn.execute("DELETE FROM quarters WHERE machine = ? AND day >= ?", where)
                recomputer.mark_current(machine)
                if extent is not None and a <= extent[1]:
                    # Pieces end at the data's last day: no later day has anything to cost.
                    a, b = max(a, day_start_ms(extent[0], tz)), next_midnight_ms(extent[1], tz)
                    computed += _in_pieces(recomputer, store, machine, a, b, tz)
            recomputed = _spans(computed)
            adjustments = periods.refresh_adjustments(conn, periods.closed_periods(conn))
            detail = {
                "machines": todo,
                "reason": "all requested" if everything else "costing settings changed",
                "from": {
                    m: d.isoformat() for m, d in stale.items() if d != date.min and not everything
                },
                "recomputed": recomputed,
                "priced_by": priced_by(self.cfg, recomputed.values()),
                "adjustments": adjustments,
            }
            record(conn, self._entry("recompute", detail))
        return recomputed

    def keep_quarters(self) -> int:
        """Keep the quarter hours (ledger/quarters.py) of the days that have readings but
        none kept (a ledger older than the table), computed as a recompute would; the rows
        stay as they are. Returns how many machine-days were missing."""
        tz = self.cfg.site.tz
        with self._open() as conn, transaction(conn):
            try:
                stale = self._stale(conn)
            except LedgerError:
                return 0  # needs shop.toml fixed and `shopwatt recompute`, which keeps them
            missing = conn.execute(
                "SELECT machine, MIN(day), MAX(day), COUNT(*) FROM day_stats s "
                "WHERE NOT EXISTS (SELECT 1 FROM quarters q WHERE q.machine = s.machine "
                "AND q.day = s.day) GROUP BY machine"
            ).fetchall()
            store = ReadingStore(conn)
            recomputer = Recomputer(conn, store, self.cfg, prints=self._prints)

            def keep(c: Computed) -> None:
                days = (c.first_day.isoformat(), c.end_day.isoformat())
                quarters.save(conn, c.machine, *days, c.quarters)

            for machine, first, last, _ in missing:
                if machine in stale:
                    continue  # `shopwatt recompute` computes its days again, and keeps them
                end = date.fromisoformat(last) + timedelta(days=1)
                a, b = recomputer.safe_cuts(
                    machine, midnight_ms(date.fromisoformat(first), tz), midnight_ms(end, tz)
                )
                _in_pieces(recomputer, store, machine, a, b, tz, keep)
                store.forget()
        return sum(int(n) for *_, n in missing)

    def close(self, period: str) -> periods.Closed:
        """Freeze a month; later changes to it become adjustment rows in an open month."""
        with self._open() as conn, transaction(conn):
            self._require_current(conn)
            at = self._clock()
            now_ms = utc_ms(datetime.fromisoformat(at))
            closed = periods.close(conn, period, at, self._who, now_ms, self.cfg.site.tz)
            # The month's demand and fixed charges and CO2 freeze with its rows.
            frozen = select(conn, "frozen", "period = ?", (period,))
            names = self.cfg.tariff.band_names
            series = self._series(conn, period)
            energy = month_energy(self.cfg, ReadingStore(conn), period)
            bill = compute_bill(self.cfg, energy, frozen, names, period, series)
            conn.executemany(
                "INSERT INTO frozen_charges (period, kind, machine, job_id, customer, order_id, "
                "day, demand_cents, fixed_cents, co2_g) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (period, *key, c.demand_cents, c.fixed_cents, c.co2_g)
                    for key, c in bill.charges.items()
                ],
            )
            conn.executemany(
                "INSERT INTO frozen_solar (period, kind, machine, job_id, customer, order_id, "
                "day, solar_wh, solar_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (period, *key, c.solar_wh, c.solar_cents)
                    for key, c in bill.charges.items()
                    if c.solar_wh
                ],
            )
            conn.execute("INSERT INTO frozen_bills VALUES (?, ?)", (period, frozen_figures(bill)))
            prepaid = members.freeze(conn, period)
            detail = {
                "period": period,
                "prepaid_members": prepaid,
                "rows": closed.rows,
                "adjustments_frozen": closed.adjustments,
                "open_jobs_left_out": closed.open_jobs,
                "energy_kwh": str(closed.energy_kwh),
                "total_cents": closed.total_cents,
                "demand_cents": bill.demand_cents,
                "fixed_cents": bill.fixed_day_cents + bill.fixed_month_cents,
            }
            record(conn, self._entry("close", detail))
        return closed

    def drop_readings(
        self, machine: str, lo: int, hi: int, *, preview: bool = False, expect: str = ""
    ) -> Dropped:
        """Remove a machine's readings with lo <= t < hi (bad data that got in) and recompute.

        preview: do it all, then roll back, to show what it would drop. expect: the sha256
        that a preview showed; if the readings in the range changed since, nothing is done.
        Refused when any part of the range lies in a closed month.
        """
        tz = self.cfg.site.tz
        self.machine(machine)
        if hi <= lo:
            raise LedgerError(f"--to = {iso_utc(hi)}: not after --from = {iso_utc(lo)}")
        try:
            with self._open() as conn, transaction(conn):
                self._require_current(conn)
                # --from/--to may be years 1 and 9999 (drop everything), whose local dates a
                # time zone away do not exist: a day inside those ends changes no month.
                first = period_of(local_date(max(lo, FIRST_MS + DAY_MS), tz))
                last = period_of(local_date(min(hi - 1, LAST_MS - DAY_MS), tz))
                closed = [p for p in periods.closed_periods(conn) if first <= p <= last]
                if closed:
                    raise LedgerError(
                        f"--from/--to reach into {', '.join(closed)}, a closed month: its "
                        "readings never change (drop only readings of open months)"
                    )
                dropped = self._drop(conn, machine, lo, hi)
                if expect and dropped.sha256 != expect:
                    raise LedgerError(
                        f"the readings of {machine} in that range changed since they were "
                        "shown (new data arrived); nothing was dropped: run the command again"
                    )
                if preview:
                    raise _Preview(dropped)
                if dropped.readings:
                    detail = {"from": iso_utc(lo), "to": iso_utc(hi), **asdict(dropped)}
                    record(conn, self._entry("drop", detail))
        except _Preview as shown:
            return shown.dropped
        return dropped

    def _drop(self, conn: sqlite3.Connection, machine: str, lo: int, hi: int) -> Dropped:
        """Remove the readings, recompute the days around them, refresh adjustments."""
        store = ReadingStore(conn)
        before = _metered_wh(conn, machine)
        gone = store.drop(machine, lo, hi)
        if not len(gone):
            return Dropped(machine, 0, None, None, 0.0, readings_sha256(gone), None, 0)
        first, last = int(gone.t_ms[0]), int(gone.t_ms[-1])
        pieces = self._recompute(conn, store, {machine: (first, last)})
        first_day, end_day = pieces[0].first_day, pieces[-1].end_day
        return Dropped(
            machine=machine,
            readings=len(gone),
            first_ms=first,
            last_ms=last,
            metered_wh=round(before - _metered_wh(conn, machine), 3),  # Wh: finer is noise
            sha256=readings_sha256(gone),
            recomputed=_days(first_day, end_day),
            adjustments=_adjust(conn, pieces),
        )

    # ------------------------------------------------------------------ customers

    def customer_add(self, customer: customers.Customer) -> customers.Customer:
        """Add a customer (or, internal, a product line of the shop's own)."""
        lists = self.cfg.pricing.lists
        if customer.price_list and customer.price_list not in lists:
            raise LedgerError(
                f"--price-list = {customer.price_list!r}: no [pricing.lists.{customer.price_list}]"
                f" in {self.cfg.source} (lists: {', '.join(lists) or 'none'})"
            )
        with self._open(create=True) as conn, transaction(conn):
            added = customers.add(conn, customer)
            record(conn, self._entry("customer add", asdict(added)))
        return added

    def customer(self, text: str) -> customers.Customer:
        """The customer `text` names (id or display name); unknown: the closest ids."""
        with self._open(readonly=True) as conn:
            return customers.require(conn, text, "--customer")

    def machine(self, name: str) -> str:
        """The machine --machine names, if shop.toml has it; else a LedgerError listing them."""
        return check_machine(self.cfg, name)

    def customer_list(self) -> list[customers.Customer]:
        """Every customer, merged ones included (they say where they went)."""
        with self._open(readonly=True) as conn:
            return customers.listed(conn, merged=True)

    def customer_rename(self, text: str, name: str) -> customers.Customer:
        """A new display name; the id, which rows and jobs carry, stays."""
        with self._open(create=True) as conn, transaction(conn):
            was, now = customers.rename(conn, text, name)
            record(
                conn, self._entry("customer rename", {"id": was.id, "from": was.name, "to": name})
            )
        return now

    def customer_merge(self, text: str, into: str) -> int:
        """Merge a customer into another: every job and row it had becomes the other's.

        Closed months are corrected by adjustment rows (a reversal under the old customer,
        the row again under the new one). Returns the rows moved.
        """
        with self._open(create=True) as conn, transaction(conn):
            self._require_current(conn)
            gone, kept = customers.merge(conn, text, into)
            spans = conn.execute(
                "SELECT machine, MIN(start_ms) AS lo, MAX(end_ms) AS hi, COUNT(*) AS n FROM rows "
                "WHERE customer = ? GROUP BY machine",
                (gone.id,),
            ).fetchall()
            for table in ("explicit_jobs", "assignments"):
                conn.execute(
                    f"UPDATE {table} SET customer = ? WHERE customer = ?", (kept.id, gone.id)
                )
            # Recomputed, not renamed in place: the kept customer may have another price list.
            touched = {s["machine"]: (s["lo"], s["hi"]) for s in spans}
            computed = self._recompute(conn, ReadingStore(conn), touched)
            moved = int(sum(s["n"] for s in spans))
            adjustments = _adjust(conn, computed)
            detail = {"id": gone.id, "into": kept.id, "rows": moved, "adjustments": adjustments}
            record(conn, self._entry("customer merge", detail))
        return moved

    # ------------------------------------------------------------------ jobs

    def assign(
        self, job_id: str, machine: str | None, said: assignments.Assignment
    ) -> tuple[LedgerRow, int]:
        """Say who a job was for (customer, order, parts, scrap); returns the job as it is
        now and the pending adjustment rows (a job of a closed month is corrected by them)."""
        with self._open() as conn, transaction(conn):
            self._require_current(conn)
            job = _find_job(conn, job_id, machine)
            who = customers.require(conn, said.customer, "--customer")
            said = replace(
                said,
                machine=job.machine,
                at_ms=(job.start_ms + job.end_ms) // 2,
                job_id=job.job_id,
                customer=who.id,
                made_at=self._clock(),
                made_by=self._who,
            )
            replaced = assignments.store(conn, job, said)
            now, adjustments = self._redo(conn, job, said.at_ms)
            detail = {**asdict(said), "replaced": replaced, "adjustments": adjustments}
            record(conn, self._entry("job assign", detail))
        return now, adjustments

    def job(self, job_id: str, machine: str | None) -> LedgerRow:
        """The job row of this id (on this machine), as `assign` and `split` find it."""
        with self._open(readonly=True) as conn:
            return _find_job(conn, job_id, machine)

    def split(self, job_id: str, machine: str | None, at_ms: int) -> tuple[LedgerRow, int]:
        """Cut a job in two at an instant inside it (a detected job that was two orders);
        returns the second piece and the pending adjustment rows."""
        with self._open() as conn, transaction(conn):
            self._require_current(conn)
            job = _find_job(conn, job_id, machine)
            if not job.start_ms < at_ms < job.end_ms:
                raise LedgerError(
                    f"--at = {iso_utc(at_ms)}: not inside job {job.job_id} "
                    f"({iso_utc(job.start_ms)} .. {iso_utc(job.end_ms)})"
                )
            conn.execute(
                "INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?)",
                (job.machine, at_ms, job.job_id, self._clock(), self._who),
            )
            now, adjustments = self._redo(conn, job, at_ms)
            detail = {"id": job.job_id, "machine": job.machine, "at": iso_utc(at_ms)}
            record(conn, self._entry("job split", detail | {"adjustments": adjustments}))
        return now, adjustments

    def _redo(self, conn: sqlite3.Connection, job: LedgerRow, at_ms: int) -> tuple[LedgerRow, int]:
        """Recompute the job's days; the job now covering at_ms, and the pending adjustments."""
        (computed,) = self._recompute(
            conn, ReadingStore(conn), {job.machine: (job.start_ms, job.end_ms)}
        )
        spans = [(r.start_ms, r.end_ms, r.job_id) for r in computed.rows if r.kind == "job"]
        hit = assignments.covering(spans, at_ms)
        now = next((r for r in computed.rows if hit and r.job_id == hit[2]), None)
        if now is None:  # the readings changed under it since it was listed
            raise LedgerError(f"job {job.job_id} on {job.machine}: no job there any more")
        return now, _adjust(conn, [computed])

    def note(self, said: assignments.Assignment) -> assignments.Assignment:
        """What the operator said at the machine (`shopwatt job start|stop`) about the job
        starting at `said.at_ms`; it applies as soon as the gateway has that job."""
        with self._open(create=True) as conn, transaction(conn):
            self._require_current(conn)
            said = replace(said, made_at=self._clock(), made_by=self._who)
            said = assignments.note(conn, said)
            t = said.at_ms
            computed = self._recompute(conn, ReadingStore(conn), {said.machine: (t, t)})
            adjustments = _adjust(conn, computed)
            detail = {**asdict(said), "adjustments": adjustments}
            record(conn, self._entry("job note", detail))
        return said

    def running_job(self, machine: str, job_id: str | None) -> tuple[str, int, str]:
        """The gateway's job of a machine that has started and not stopped (or the one named):
        its id, start and customer, from the job book `shopwatt run` keeps in the ledger."""
        found = self._started(machine, job_id)
        if found is None:
            which = f"no job {job_id!r} started" if job_id else "no job running"
            raise LedgerError(
                f"--machine = {machine!r}: {which} as far as the gateway knows (has "
                "`shopwatt run` taken the start yet?)"
            )
        return found

    def open_job(self, machine: str) -> tuple[str, int, str] | None:
        """The machine's job that has started and not stopped as the job book has it (its
        id, start and customer), or None (also with no ledger yet)."""
        return self._started(machine, None) if self.path.exists() else None

    def _started(self, machine: str, job_id: str | None) -> tuple[str, int, str] | None:
        """The latest start in the job book of the job named, or of an unstopped one."""
        with self._open(readonly=True) as conn:
            found = [
                (start, job, customer)
                for m, job, start, stop, customer, *_ in load_state(conn).jobs
                if m == machine
                and start is not None
                and (job == job_id if job_id else stop is None)
            ]
        if not found:
            return None
        start, job, customer = max(found)
        return job, start, customer

    def jobs(self, first: date, end: date) -> list[LedgerRow]:
        """The jobs ending on the local dates [first, end) as computed now (open ones too).

        Opened for writing (not read-only like export): `close` asks about these first, and
        an older ledger is upgraded then, as by the close itself."""
        with self._open() as conn:
            self._require_current(conn)
            return select(
                conn,
                "rows",
                "kind = 'job' AND day >= ? AND day < ?",
                (first.isoformat(), end.isoformat()),
            )

    def unassigned(self, period: str) -> list[LedgerRow]:
        """The month's finished jobs that have no customer (what a close asks about first)."""
        return [j for j in self.jobs(*period_dates(period)) if not j.customer and not j.open]

    # ------------------------------------------------------------------ reads

    def select(self, first: date, end: date) -> Selection:
        """Rows of the local dates [first, end): frozen for closed months, current otherwise."""
        with self._open(readonly=True) as conn:
            self._require_current(conn)
            closed = periods.closed_periods(conn)
            # Members' jobs are charged only for what their prepaid hours do not cover.
            rows = members.charged(conn, periods.booked(conn, first, end), end)
            span = (first.isoformat(), end.isoformat())
            open_jobs = conn.execute(
                "SELECT COUNT(*) FROM rows WHERE open = 1 AND day >= ? AND day < ?", span
            ).fetchone()[0]
        names = list(self.cfg.tariff.band_names)
        for row in rows:
            names += [b for b in row.amounts.band_wh if b not in names]
        months = {p: p in closed for p in periods_between(first, end)}
        return Selection(rows, open_jobs, names, months)

    def bill(
        self, period: str, selection: Selection | None = None, kept: quarters.Kept | None = None
    ) -> Bill:
        """The month as the utility bills it, from the rows its export prints (docs/tariffs.md).

        `selection`: the month's rows when the caller has them already. `kept`: the month's
        quarter hours as kept_quarters gives them: the demand peak is found from those
        instead of a month of readings (the same figures, for the month page).
        """
        selection = selection or self.select(*period_dates(period))
        with self._open(readonly=True) as conn:
            series = self._series(conn, period)
            store = ReadingStore(conn)
            energy = month_energy(self.cfg, store, period)
            if kept is not None:
                bounds = Recomputer(conn, store, self.cfg, prints=self._prints).bounds
                energy = quarters.KeptEnergy(self.cfg, store, energy.lo, energy.hi, kept, bounds)
            now = compute_bill(
                self.cfg, energy, selection.rows, selection.band_names, period, series
            )
            saved = conn.execute(
                "SELECT figures FROM frozen_bills WHERE period = ?", (period,)
            ).fetchone()
            if saved is None:  # open, or closed by a shopwatt that kept no figures
                return now
            return frozen_bill(now, saved[0], _frozen_charges(conn, period, period))

    def kept_quarters(self, first: date, end: date) -> quarters.Kept:
        """Each machine's energy and state per quarter hour of the local days [first, end),
        as kept with its rows (machines with days not kept are left out)."""
        with self._open(readonly=True) as conn:
            return quarters.load(conn, self.cfg, first, end)

    def closed(self, period: str) -> tuple[str, str] | None:
        """When and by whom the month was closed; None while it is open."""
        with self._open(readonly=True) as conn:
            return periods.closed_periods(conn).get(period)

    def demand(self, watch: PeakWatch, at_ms: int) -> LiveDemand:
        """The month's peak so far and the running 15-minute average up to at_ms."""
        with self._open(readonly=True) as conn:
            return watch.update(ReadingStore(conn), at_ms)

    def _series(self, conn: sqlite3.Connection, period: str) -> dict[str, PriceSlots]:
        """The slots of the price series the tariff uses, over one local month."""
        lo, hi = period_ms(period, self.cfg.site.tz)
        co2 = {s: prices.load(conn, s, lo, hi) for s in prices.co2_series(self.cfg.tariff)}
        return prices.tariff_slots(conn, self.cfg.tariff, lo, hi) | co2

    def price_slots(self, first_ms: int, last_ms: int) -> dict[str, PriceSlots]:
        """The slots overlapping [first_ms, last_ms] of the series the tariff uses."""
        if not prices.spot_series(self.cfg.tariff):
            return {}  # no spot price: no need to open the ledger
        with self._open(readonly=True) as conn:
            return prices.tariff_slots(conn, self.cfg.tariff, first_ms, last_ms + 1)

    def charges(self, first: date, end: date) -> Charges:
        """Demand and fixed cents and CO2 per row of the months touching [first, end): as
        put on rows at the close for closed months, as `bill` puts them now for open ones."""
        with self._open(readonly=True) as conn:
            closed = periods.closed_periods(conn)
            found = _frozen_charges(conn, period_of(first), period_of(end))
        for period in periods_between(first, end):
            if period not in closed:
                found |= self.bill(period).charges
        return found

    def stored(self, days: Mapping[str, tuple[str, str]]) -> Mapping[str, MachineReadings]:
        """Readings of machine -> (first, last local day), each read only when asked for."""
        return _Stored(self, days)

    def rows_of(self, days: Mapping[str, tuple[str, str]]) -> list[LedgerRow]:
        """The rows of some machines' local days (machine -> first and last day, as replay
        and recompute report what they recomputed), as select() gives them."""
        if not days:
            return []
        first = date.fromisoformat(min(a for a, _ in days.values()))
        end = date.fromisoformat(max(b for _, b in days.values())) + timedelta(days=1)
        return [r for r in self.select(first, end).rows if r.machine in days]

    def live_state(self) -> LiveState:
        """`shopwatt run`'s state as the last committed batch left it (none: no ledger)."""
        if not self.path.exists():
            return LiveState()
        with self._open() as conn:
            return load_state(conn)

    def readings(self, machine: str, first_ms: int, last_ms: int) -> MachineReadings:
        """A machine's stored readings with first_ms <= t <= last_ms."""
        with self._open() as conn:
            return ReadingStore(conn).load(machine, first_ms, last_ms + 1)

    def status(self, audit_entries: int = 5) -> Status:
        """Readings, drops and repairs per machine, closed months, the latest audit entries."""
        with self._open(readonly=True) as conn:
            stale = self._stale(conn)
            store = ReadingStore(conn)
            machines = [
                replace(
                    _machine_status(conn, store, m["machine"], m["machine"] not in stale),
                    changed_from=stale.get(m["machine"]),
                )
                for m in conn.execute("SELECT machine FROM machines ORDER BY machine")
            ]
            extent = conn.execute("SELECT MIN(day), MAX(day) FROM rows").fetchone()
            pending = conn.execute("SELECT COUNT(*) FROM adjustments").fetchone()[0]
            return Status(
                self.path,
                machines,
                periods.closed_periods(conn),
                pending,
                recent(conn, audit_entries),
                priced_by(self.cfg, [tuple(extent)] if extent[0] else []),
                assignments.unsettled(conn) + customers.strangers(conn),
            )


def _own_customers(
    conn: sqlite3.Connection,
    jobs: JobsSource,
    create: bool,
    entry: Callable[[str, Mapping[str, object]], Entry],
) -> dict[str, tuple[ExplicitJob, ...]]:
    """The jobs with each customer as its id; an unknown name is refused with its line and
    the closest known ids, or added when `create`."""
    owned: dict[str, tuple[ExplicitJob, ...]] = {}
    for machine, listed in jobs.jobs.items():
        mine = []
        for job in listed:
            who = customers.find(conn, job.customer) if job.customer else None
            if job.customer and who is None:
                where = f"{jobs.path} line {jobs.lines.get((machine, job.job_id), '?')}"
                if not create:
                    raise customers.unknown(conn, job.customer, where)
                who = customers.add(conn, customers.Customer(job.customer, job.customer))
                record(conn, entry("customer add", {**asdict(who), "from": where}))
            mine.append(replace(job, customer=who.id) if who else job)
        owned[machine] = tuple(mine)
    return owned


def _find_job(conn: sqlite3.Connection, job_id: str, machine: str | None) -> LedgerRow:
    """The job row with this id (on this machine); a LedgerError names what was found."""
    where = "kind = 'job' AND job_id = ?" + (" AND machine = ?" if machine else "")
    found = select(conn, "rows", where, (job_id, machine) if machine else (job_id,))
    if len(found) == 1:
        return found[0]
    if found:
        machines = ", ".join(r.machine for r in found)
        raise LedgerError(f"job {job_id!r} is on several machines ({machines}): give --machine")
    ids = [r["job_id"] for r in conn.execute("SELECT DISTINCT job_id FROM rows WHERE kind = 'job'")]
    near = difflib.get_close_matches(job_id, ids, n=3)
    hint = f"closest: {', '.join(near)}" if near else "see `shopwatt jobs`"
    on = f" on {machine}" if machine else ""
    raise LedgerError(f"job {job_id!r}{on} is not in the ledger ({hint})")


class _Stored(Mapping[str, MachineReadings]):
    """Ledger.stored(): one machine's readings in memory at a time, however many days."""

    def __init__(self, ledger: Ledger, days: Mapping[str, tuple[str, str]]) -> None:
        self._ledger = ledger
        self._days = days

    def __getitem__(self, machine: str) -> MachineReadings:
        tz, (first, last) = self._ledger.cfg.site.tz, self._days[machine]
        lo = midnight_ms(date.fromisoformat(first), tz)
        end = midnight_ms(date.fromisoformat(last) + timedelta(days=1), tz)
        return self._ledger.readings(machine, lo, end - 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self._days)

    def __len__(self) -> int:
        return len(self._days)


def _conflicts(s: Staged) -> int:
    """Dropped rows with other values than the kept one: in the file, then against the ledger."""
    return s.conflicts + s.merged.conflicts


def _in_pieces(
    recomputer: Recomputer,
    store: ReadingStore,
    machine: str,
    a: int,
    b: int,
    tz: ZoneInfo,
    save: Callable[[Computed], None] | None = None,
) -> list[Computed]:
    """Recompute and save the safe local days [a, b) a day (or the days a job spans) at a time
    (`save`: what of each piece to save; default: all of it, Recomputer.save).

    The engine needs a few hundred bytes per reading: at 1 Hz a day is ~20 MB, so memory
    stays flat however long the data runs. Days without readings go with the next day
    that has some (a 1970 reading is one piece with the day after it, not 20,000).
    """
    done = []
    cached_from = a
    while a < b:
        nxt = store.first_from(machine, a)
        day = next_midnight_ms(a if nxt is None else max(a, nxt), tz)
        _, cut = recomputer.safe_cuts(machine, a, min(day, b))
        done.append(recomputer.compute(machine, a, cut))
        (save or recomputer.save)(done[-1])
        # Keep a week of decoded blocks (~15 MB at 1 Hz): the next piece looks back into
        # them, and decoding each block once per piece would cost more than the piece.
        if cut - cached_from > _CACHED_MS:
            store.forget()
            cached_from = cut
        a = cut
    return done


def _spans(computed: Sequence[Computed]) -> dict[str, tuple[str, str]]:
    """Machine -> first and last local day recomputed (pieces of a machine come in order)."""
    first = {c.machine: c.first_day for c in reversed(computed)}
    return {c.machine: _days(first[c.machine], c.end_day) for c in computed}


def _adjust(conn: sqlite3.Connection, computed: Sequence[Computed]) -> int:
    """Refresh the pending adjustments of the closed months the recomputed days fall in."""
    changed = {p for c in computed for p in periods_between(c.first_day, c.end_day)}
    return periods.refresh_adjustments(conn, changed)


def _job_customer(conn: sqlite3.Connection, job: ExplicitJob) -> str:
    """Who a live job is for: the member whose card started it (when no customer was sent),
    else the customer it names, by id or name ("acme gmbh"); a name or card nobody knows
    stays as sent (empty for a card), and `status` or the unassigned jobs show it."""
    if not job.customer and job.card:
        holder = members.by_card(conn, job.card)
        if holder is not None:
            return holder.id
    return customers.id_of(conn, job.customer)


def _frozen_charges(conn: sqlite3.Connection, first: str, last: str) -> Charges:
    """The charges put on the rows of the closed months first..last at their close."""
    # A row without solar (or of a month closed before frozen_solar existed) has none there.
    frozen = conn.execute(
        """SELECT c.*, coalesce(s.solar_wh, 0) AS solar_wh,
            coalesce(s.solar_cents, 0) AS solar_cents
        FROM frozen_charges c LEFT JOIN frozen_solar s
            USING (period, kind, machine, job_id, customer, order_id, day)
        WHERE c.period >= ? AND c.period <= ?""",
        (first, last),
    )
    return {
        (f["kind"], f["machine"], f["job_id"], f["customer"], f["order_id"], f["day"]): RowCharges(
            f["demand_cents"], f["fixed_cents"], f["co2_g"], f["solar_wh"], f["solar_cents"]
        )
        for f in frozen
    }


def readings_sha256(r: MachineReadings) -> str:
    """sha256 of readings as little-endian bytes: every int64 time (UTC ms), then every
    float64 watts, then every float64 wh (NaN: no counter), so an auditor can recompute it."""
    raw = r.t_ms.astype("<i8").tobytes() + r.watts.astype("<f8").tobytes()
    return hashlib.sha256(raw + r.wh.astype("<f8").tobytes()).hexdigest()


def _metered_wh(conn: sqlite3.Connection, machine: str) -> float:
    """All energy the ledger has metered for a machine."""
    found = conn.execute("SELECT SUM(metered_wh) FROM day_stats WHERE machine = ?", (machine,))
    return float(found.fetchone()[0] or 0.0)


def _count(conn: sqlite3.Connection, machine: str, counts: Mapping[str, int]) -> None:
    """Add to the machine's drop counters (shown by `shopwatt status`)."""
    conn.executemany(
        "INSERT INTO counters VALUES (?, ?, ?) "
        "ON CONFLICT (machine, name) DO UPDATE SET value = value + excluded.value",
        # Adding nothing would still write the page (every live batch, every machine).
        [(machine, name, n) for name, n in counts.items() if n],
    )


def _touched(merged: Mapping[str, Merged]) -> dict[str, tuple[int, int]]:
    """Machine -> first and last reading a merge added (machines it added nothing to: none)."""
    return {
        m: (x.first_ms, x.last_ms)
        for m, x in merged.items()
        if x.first_ms is not None and x.last_ms is not None
    }


def _widen(
    touched: dict[str, tuple[int, int]], jobs: Mapping[str, object], span: tuple[int, int]
) -> None:
    """Extend the touched ranges of the machines with jobs by the days the jobs govern."""
    first, last = span[0], span[1] - 1
    for machine in jobs:
        lo, hi = touched.get(machine, (first, last))
        touched[machine] = (min(lo, first), max(hi, last))


def _machine_status(
    conn: sqlite3.Connection, store: ReadingStore, machine: str, current: bool
) -> MachineStatus:
    readings, first_ms, last_ms = store.summary(machine)
    stats = conn.execute(
        "SELECT SUM(metered_wh) AS wh, SUM(counter_resets) AS resets, "
        "SUM(implausible_jumps) AS jumps, SUM(gaps) AS gaps, SUM(gap_s) AS gap_s "
        "FROM day_stats WHERE machine = ?",
        (machine,),
    ).fetchone()
    counters = {
        c["name"]: c["value"]
        for c in conn.execute("SELECT name, value FROM counters WHERE machine = ?", (machine,))
    }
    counters |= {
        "counter_resets": stats["resets"] or 0,
        "implausible_jumps": stats["jumps"] or 0,
        "gaps": stats["gaps"] or 0,
        "gap_s": round(stats["gap_s"] or 0),
    }
    open_jobs = conn.execute(
        "SELECT COUNT(*) FROM rows WHERE machine = ? AND open = 1", (machine,)
    ).fetchone()[0]
    return MachineStatus(
        machine,
        readings,
        first_ms,
        last_ms,
        stats["wh"] or 0.0,
        counters,
        open_jobs,
        current,
    )


def priced_by(cfg: ShopConfig, ranges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Tariff version id -> first and last local day it priced among recomputed day ranges
    (a version valid from a date-time shares its first day with the one before)."""
    days = [d for r in ranges for d in r]
    if not days:
        return {}
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    return {
        vid: [max(a, first).isoformat(), min(b, last).isoformat()]
        for vid, a, b in cfg.tariff.version_days
        if a <= last and b >= first
    }


def _days(first: date, end: date) -> tuple[str, str]:
    """First and last local day of [first, end), for messages and the audit trail."""
    return first.isoformat(), (end - timedelta(days=1)).isoformat()


def _extent(data: tuple[int, int] | None, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """First and last ms of a machine's readings and of the days its jobs files govern."""
    ends = ([data] if data else []) + [(a, b - 1) for a, b in spans]  # spans end exclusive
    return (min(e[0] for e in ends), max(e[1] for e in ends)) if ends else None


def _file(path: Path, sha256: str) -> dict[str, str]:
    return {"path": str(path), "sha256": sha256}
