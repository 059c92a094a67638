"""What each page shows, read from the ledger (read-only): plain data for the templates."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gateway.config import OUTBOX_FILE, Machine, ShopConfig
from gateway.engine.live import LiveView
from gateway.engine.localtime import (
    local_date,
    local_time,
    midnight_ms,
    period_dates,
    period_of,
)
from gateway.engine.states import machine_states
from gateway.export.table import Table, build_table
from gateway.ledger import Ledger
from gateway.ledger.bill import Bill
from gateway.ledger.chunks import ReadingStore
from gateway.ledger.live import load_state
from gateway.ledger.rows import LedgerRow
from gateway.ledger.schema import connect
from gateway.outputs.schema import STATE_NAMES


@dataclass(frozen=True, slots=True)
class FloorMachine:
    """One machine's tile on the floor page."""

    id: str
    name: str
    state: str  # off / idle / running / offline (newest reading too old) / no data
    watts: float | None
    seen: str  # local time of the newest reading, "" when none
    job: str  # the open job's id, "" when none
    customer: str
    cost_cents: int  # the open job's cost so far
    # The open job was detected from power, not started by a job event: it ends when the
    # machine stops, and the gateway's job book has no start a Stop could end.
    detected: bool = False


# Machine -> its newest stored reading (t_ms, watts), found by decoding its newest day.
Newest = dict[str, tuple[int, float]]


def floor(
    cfg: ShopConfig, ledger: Ledger, now_ms: int, decoded: Newest | None = None
) -> list[FloorMachine]:
    """Every machine's newest reading, its state and its open job with the cost so far.

    A machine whose newest reading is too old for its sensor to be online (as on Health) is
    `offline`: its last power is no state of now, say a sensor that died while running.

    `decoded`: the server's memory of newest readings found in the stored readings; the
    floor refreshes every few seconds and a replayed ledger's newest reading rarely moves.
    """
    if not ledger.path.exists():
        return [
            FloorMachine(m.id, m.name or m.id, "no data", None, "", "", "", 0) for m in cfg.machine
        ]
    out = []
    with closing(connect(ledger.path, readonly=True)) as conn:
        live = load_state(conn)
        newest = _newest_readings(
            conn, live.views, [m.id for m in cfg.machine], {} if decoded is None else decoded
        )
        # A row stays open until readings pass its end; a job the gateway has stopped (its
        # sensor offline, say) is no longer running, and its Stop button would be refused.
        booked = {(j[0], j[1]): j[3] is not None for j in live.jobs}  # -> stopped
        open_rows = {
            r["machine"]: r
            for r in conn.execute(
                "SELECT machine, job_id, customer, energy_cents + depreciation_cents"
                " + maintenance_cents AS cents FROM rows WHERE open = 1 ORDER BY start_ms"
            )
            if not booked.get((r["machine"], r["job_id"]), False)
        }
    for m in cfg.machine:
        state, watts, seen = "no data", None, ""
        if m.id in newest:
            t_ms, watts = newest[m.id]
            state = STATE_NAMES[int(machine_states(np.array([watts]), m)[0])]
            state = state if _online(m, t_ms, now_ms) else "offline"
            seen = f"{local_time(t_ms, cfg.site.tz):%Y-%m-%d %H:%M:%S}"
        job = open_rows.get(m.id)
        out.append(
            FloorMachine(
                m.id,
                m.name or m.id,
                state,
                watts,
                seen,
                job["job_id"] if job else "",
                job["customer"] if job else "",
                int(job["cents"]) if job else 0,
                job is not None and (m.id, job["job_id"]) not in booked,
            )
        )
    return out


def _newest_readings(
    conn: sqlite3.Connection, views: dict[str, LiveView], machines: list[str], decoded: Newest
) -> Newest:
    """Machine -> (t_ms, watts) of its newest reading.

    `shopwatt run` keeps each machine's newest reading in machine_view (its live picture):
    one small row, where the stored readings would mean decoding a whole day per machine.
    A machine the service has not seen (a replayed ledger) is read from its readings,
    once per newest reading: `decoded` keeps what was found.
    """
    found = {
        machine: (int(view.last[0]), float(view.last[1]))
        for machine, view in views.items()
        if view.last is not None
    }
    store = ReadingStore(conn)
    for machine in machines:
        span = store.span(machine)
        if span is None or (machine in found and found[machine][0] >= span[1]):
            continue
        if machine not in decoded or decoded[machine][0] != span[1]:
            last = store.load(machine, span[1], span[1] + 1)
            decoded[machine] = (span[1], float(last.watts[0]))
        found[machine] = decoded[machine]
    return found


@dataclass(frozen=True, slots=True)
class Health:
    """The gateway at a glance: sensors, backlogs, drops, outbox."""

    sensors: list[tuple[str, str, str, str]]  # (sensor or meter, machine, online/offline, seen)
    dropped: dict[str, int]  # reason -> readings or rows, summed over machines
    pending_recompute: int  # machines whose stored readings wait for their rows
    open_live_jobs: int
    pending_adjustments: int
    outbox_lines: int | None  # None without [influxdb]


def health(cfg: ShopConfig, ledger: Ledger, now_ms: int) -> Health:
    """From what the ledger, the service's state tables and the outbox file already store.

    A sensor counts as online while its machine's newest reading is young enough (`_online`).
    """
    dropped: dict[str, int] = defaultdict(int)
    newest: dict[str, int] = {}
    pending = live = adjustments = 0
    if ledger.path.exists():
        status = ledger.status(0)
        adjustments = status.pending_adjustments
        for ms in status.machines:
            for name, value in ms.counters.items():
                if name != "gap_s":
                    dropped[name] += int(value)
            if ms.last_ms is not None:
                newest[ms.machine] = ms.last_ms
        with closing(connect(ledger.path, readonly=True)) as conn:
            state = load_state(conn)
        pending = len(state.pending)
        live = sum(1 for job in state.jobs if job[2] is not None and job[3] is None)
    sensors = []
    for m in cfg.machine:
        last = newest.get(m.id)
        online = last is not None and _online(m, last, now_ms)
        seen = f"{local_time(last, cfg.site.tz):%Y-%m-%d %H:%M}" if last else "never"
        for source in [s.id for s in m.sensor] + [meter.id for meter in m.meter]:
            sensors.append((source, m.id, "online" if online else "offline", seen))
    return Health(sensors, dict(sorted(dropped.items())), pending, live, adjustments, _outbox(cfg))


def _online(machine: Machine, newest_ms: int, now_ms: int) -> bool:
    """Newer than twice max_gap_s: the longest silence the engine still bridges."""
    return now_ms - newest_ms < 2_000 * machine.max_gap_s


def _outbox(cfg: ShopConfig) -> int | None:
    """Lines waiting for InfluxDB; None when the shop has no [influxdb]."""
    if cfg.influxdb is None:
        return None
    path = cfg.storage_dir / OUTBOX_FILE
    if not path.exists():
        return 0
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


# The cost breakdown's parts: the rows' own costs, then the bill's charges shared out to
# them (the export's demand_cost and fixed_cost).
COST_PARTS = ("energy", "depreciation", "maintenance", "demand", "fixed")


@dataclass(slots=True)
class Month:
    """One month's rows, summed the ways the month page draws them."""

    period: str
    first: date
    end: date
    rows: list[LedgerRow]
    closed: tuple[str, str] | None  # (at, by) when closed
    bill: Bill  # the demand peak, its charge and who made it, as `shopwatt bill` has them
    by_customer: Table  # the export's `--by customer` lines (cost, price, margin)
    lo_ms: int  # the month's first midnight: quarter hour k starts k x 15 min later
    # machine -> state per quarter hour of the month (engine/demand.py quarter_states),
    # as the ledger keeps them; a machine without kept ones (an older ledger) has none.
    states: dict[str, npt.NDArray[np.int8]]
    band_wh: dict[str, dict[str, float]] = field(default_factory=dict)  # machine -> band -> Wh
    cost: dict[str, dict[str, int]] = field(default_factory=dict)  # machine -> part -> cents
    idle_wh: dict[str, float] = field(default_factory=dict)  # machine -> Wh outside jobs
    customers: dict[str, int] = field(default_factory=dict)  # customer -> cents
    jobs: dict[str, list[LedgerRow]] = field(default_factory=dict)  # machine -> job rows


def month(cfg: ShopConfig, ledger: Ledger, period: str) -> Month:
    """The month's rows (frozen when closed), its bill from the quarter hours the ledger
    keeps, and their sums per machine, band, customer."""
    first, end = period_dates(period)
    selection = ledger.select(first, end)
    kept = ledger.kept_quarters(first, end)
    bill = ledger.bill(period, selection, kept)
    by_customer = build_table(selection, cfg.site.tz, cfg.site.currency, "customer", bill.charges)
    m = Month(
        period,
        first,
        end,
        selection.rows,
        ledger.closed(period),
        bill,
        by_customer,
        midnight_ms(first, cfg.site.tz),
        {machine: states for machine, (_, states) in kept.items()},
    )
    for mach in cfg.machine:
        m.band_wh[mach.id] = dict.fromkeys(selection.band_names, 0.0)
        m.cost[mach.id] = dict.fromkeys(COST_PARTS, 0)
        m.idle_wh[mach.id] = 0.0
        m.jobs[mach.id] = []
    for row in selection.rows:
        a = row.amounts
        bands = m.band_wh.setdefault(row.machine, {})
        for band, wh in a.band_wh.items():
            bands[band] = bands.get(band, 0.0) + wh
        cost = m.cost.setdefault(row.machine, dict.fromkeys(COST_PARTS, 0))
        cost["energy"] += a.energy_cents
        cost["depreciation"] += a.depreciation_cents
        cost["maintenance"] += a.maintenance_cents
        if row.kind != "adjustment":  # a month's charges sit on its own rows only
            c = bill.charges.get(row.origin_key())
            cost["demand"] += c.demand_cents if c else 0
            cost["fixed"] += c.fixed_cents if c else 0
        if row.kind == "overhead":
            m.idle_wh[row.machine] = m.idle_wh.get(row.machine, 0.0) + a.energy_wh
        else:
            who = row.customer or "(unassigned)"
            m.customers[who] = m.customers.get(who, 0) + a.total_cents
        if row.kind == "job":
            m.jobs.setdefault(row.machine, []).append(row)
    return m


def jobs(
    ledger: Ledger, first: date, end: date, machine: str = "", customer: str = ""
) -> list[LedgerRow]:
    """Job rows of [first, end), filtered by machine and customer ('-' = unassigned)."""
    who = "" if customer == "-" else customer or None
    shown = ledger.select(first, end).only(customer=who, machine=machine or None)
    return [r for r in shown.rows if r.kind == "job"]


def latest_period(ledger: Ledger, now_ms: int, tz: ZoneInfo) -> str:
    """The newest month with rows; the current month when the ledger has none."""
    if ledger.path.exists():
        with closing(connect(ledger.path, readonly=True)) as conn:
            found = conn.execute("SELECT MAX(period) FROM rows").fetchone()[0]
        if found:
            return str(found)
    return period_of(local_date(now_ms, tz))
