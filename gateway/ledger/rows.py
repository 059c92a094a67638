"""Ledger rows: a job, a day's overhead or an adjustment, with money already in cents.

The same record (and the same columns) lives in three tables: `rows` (the latest
computation), `adjustments` (pending corrections of closed periods) and `frozen` (closed
periods, never changed again).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from gateway.engine.localtime import period_of
from gateway.engine.model import CostRow
from gateway.ledger.units import energy_cents, hour_cents, hours, kwh, money

Kind = Literal["job", "overhead", "adjustment"]
Table = Literal["rows", "adjustments", "frozen"]
# (kind, machine, job_id, customer, order, overhead day): what an adjustment corrects.
OriginKey = tuple[str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Amounts:
    """The additive part of a row: everything an adjustment can correct."""

    duration_s: float
    run_s: float
    band_wh: dict[str, float]  # by band name, tariff order
    energy_cents: int
    depreciation_cents: int
    maintenance_cents: int
    parts: int = 0  # good parts the job made (0: not known)
    scrap: int = 0  # parts made and thrown away
    price_cents: int | None = None  # net price (None: no price: internal, unassigned, ...)

    @property
    def total_cents(self) -> int:
        """The sum of the three rounded costs (never rounded again)."""
        return self.energy_cents + self.depreciation_cents + self.maintenance_cents

    @property
    def energy_wh(self) -> float:
        """All energy of the row."""
        return sum(self.band_wh.values())

    def __add__(self, other: Amounts) -> Amounts:
        bands = dict(self.band_wh)
        for name, wh in other.band_wh.items():
            bands[name] = bands.get(name, 0.0) + wh
        return Amounts(
            self.duration_s + other.duration_s,
            self.run_s + other.run_s,
            bands,
            self.energy_cents + other.energy_cents,
            self.depreciation_cents + other.depreciation_cents,
            self.maintenance_cents + other.maintenance_cents,
            self.parts + other.parts,
            self.scrap + other.scrap,
            _add(self.price_cents, other.price_cents),
        )

    def __neg__(self) -> Amounts:
        return Amounts(
            -self.duration_s,
            -self.run_s,
            {name: -wh for name, wh in self.band_wh.items()},
            -self.energy_cents,
            -self.depreciation_cents,
            -self.maintenance_cents,
            -self.parts,
            -self.scrap,
            None if self.price_cents is None else -self.price_cents,
        )

    def __sub__(self, other: Amounts) -> Amounts:
        return self + -other

    def printed_kwh(self) -> Decimal:
        """All energy as the export prints it: the sum of the printed bands."""
        return sum((kwh(wh) for wh in self.band_wh.values()), Decimal("0.000"))

    def printed(self, band_names: Sequence[str]) -> dict[str, Decimal]:
        """Every figure as the export prints it, by column name, in the export's order.

        `energy_kwh` is the sum of the printed bands and `total_cost` of the printed costs,
        so a line adds up as it is read (the export and the InfluxDB `job` points).
        """
        bands = {f"kwh_{b}": kwh(self.band_wh.get(b, 0.0)) for b in band_names}
        return {
            "duration_h": hours(self.duration_s),
            "run_h": hours(self.run_s),
            "energy_kwh": sum(bands.values(), Decimal("0.000")),
            **bands,
            "energy_cost": money(self.energy_cents),
            "depreciation_cost": money(self.depreciation_cents),
            "maintenance_cost": money(self.maintenance_cents),
            "total_cost": money(self.total_cents),
        }

    def prints_as_zero(self) -> bool:
        """True when every figure the export would print for these amounts is zero."""
        return (
            self.energy_cents == self.depreciation_cents == self.maintenance_cents == 0
            and self.parts == self.scrap == 0
            and not self.price_cents
            and hours(self.duration_s) == 0
            and hours(self.run_s) == 0
            and all(kwh(wh) == 0 for wh in self.band_wh.values())
        )


def _add(a: int | None, b: int | None) -> int | None:
    """Prices add up; no price plus no price is still no price."""
    return None if a is None and b is None else (a or 0) + (b or 0)


ZERO = Amounts(0.0, 0.0, {}, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One row as the ledger keeps it and the export prints it."""

    period: str  # 'YYYY-MM' the row is accounted in
    kind: Kind
    job_id: str
    machine: str
    customer: str
    start_ms: int
    end_ms: int
    day: date  # a job's local end date, an overhead row's day, an adjustment's period start
    amounts: Amounts
    open: bool = False  # a job still running at the end of the data: never exported
    origin_period: str = ""  # adjustments: the closed period they correct
    origin_kind: str = ""  # adjustments: 'job' or 'overhead'
    origin_day: str = ""  # adjustments of overhead rows: the corrected day
    order: str = ""  # the customer's order the job was for (an assignment)

    def origin_key(self) -> OriginKey:
        """Which job or overhead day this row is about (adjustments: the one they correct)."""
        who = (self.machine, self.job_id, self.customer, self.order)
        if self.kind == "adjustment":
            return (self.origin_kind, *who, self.origin_day)
        day = self.day.isoformat() if self.kind == "overhead" else ""
        return (self.kind, *who, day)

    def adjusting(self, origin_period: str, target: str, day: date, amounts: Amounts) -> LedgerRow:
        """An adjustment row in `target` that corrects this row of a closed period."""
        kind, *_, origin_day = self.origin_key()
        return replace(
            self,
            period=target,
            kind="adjustment",
            day=day,
            amounts=amounts,
            open=False,
            origin_period=origin_period,
            origin_kind=kind,
            origin_day=origin_day,
        )


def from_cost_row(row: CostRow, band_names: Sequence[str], rates: Sequence[float]) -> LedgerRow:
    """The engine's row with money in cents, one rounding per cost per row; the energy cost
    is the printed kWh of each priced column (tariff version x band) at its rate
    (units.energy_cents, rates aligned with Tariff.columns), the machine-hour costs are the
    printed hours (run_h, or duration_h for depreciation on job hours) at their rates."""
    duration_s = (row.end_ms - row.start_ms) / 1000.0
    depreciation_s = duration_s if row.depreciation_basis == "job_hours" else row.run_s
    return LedgerRow(
        period=period_of(row.day),
        kind=row.kind,
        job_id=row.job_id,
        machine=row.machine,
        customer=row.customer,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        day=row.day,
        amounts=Amounts(
            duration_s=duration_s,
            run_s=row.run_s,
            band_wh=dict(zip(band_names, row.band_wh, strict=True)),
            energy_cents=energy_cents(row.priced_wh or row.band_wh, rates, row.spot_cost),
            depreciation_cents=hour_cents(depreciation_s, row.depreciation_per_h),
            maintenance_cents=hour_cents(row.run_s, row.maintenance_per_h),
        ),
        open=row.open,
    )


# The columns of the first schema (schema._DDL); the billing step adds BILLING_COLUMNS.
COLUMNS_V1 = (
    "period",
    "kind",
    "job_id",
    "machine",
    "customer",
    "start_ms",
    "end_ms",
    "day",
    "duration_s",
    "run_s",
    "band_wh",
    "energy_cents",
    "depreciation_cents",
    "maintenance_cents",
    "open",
    "origin_period",
    "origin_kind",
    "origin_day",
)
# Added by the billing migration step, with their SQL types (price_cents NULL: no price).
BILLING_COLUMNS = {
    "order_id": "TEXT NOT NULL DEFAULT ''",
    "parts": "INTEGER NOT NULL DEFAULT 0",
    "scrap": "INTEGER NOT NULL DEFAULT 0",
    "price_cents": "INTEGER",
}
COLUMNS = COLUMNS_V1 + tuple(BILLING_COLUMNS)

TABLE_DDL = f"({', '.join(COLUMNS_V1)})"


def _to_sql(r: LedgerRow) -> tuple[Any, ...]:
    a = r.amounts
    return (
        r.period,
        r.kind,
        r.job_id,
        r.machine,
        r.customer,
        r.start_ms,
        r.end_ms,
        r.day.isoformat(),
        a.duration_s,
        a.run_s,
        json.dumps(a.band_wh),
        a.energy_cents,
        a.depreciation_cents,
        a.maintenance_cents,
        int(r.open),
        r.origin_period,
        r.origin_kind,
        r.origin_day,
        r.order,
        a.parts,
        a.scrap,
        a.price_cents,
    )


def _from_sql(v: sqlite3.Row) -> LedgerRow:
    # A read-only copy of an older ledger has no billing columns: their defaults.
    present = set(v.keys())  # a Row's `in` looks at its values, not its column names
    billing: dict[str, Any] = {"order_id": "", "parts": 0, "scrap": 0, "price_cents": None}
    billing |= {k: v[k] for k in BILLING_COLUMNS if k in present}
    return LedgerRow(
        period=v["period"],
        kind=v["kind"],
        job_id=v["job_id"],
        machine=v["machine"],
        customer=v["customer"],
        start_ms=v["start_ms"],
        end_ms=v["end_ms"],
        day=date.fromisoformat(v["day"]),
        amounts=Amounts(
            v["duration_s"],
            v["run_s"],
            json.loads(v["band_wh"]),
            v["energy_cents"],
            v["depreciation_cents"],
            v["maintenance_cents"],
            billing["parts"],
            billing["scrap"],
            billing["price_cents"],
        ),
        open=bool(v["open"]),
        origin_period=v["origin_period"],
        origin_kind=v["origin_kind"],
        origin_day=v["origin_day"],
        order=billing["order_id"],
    )


def insert(conn: sqlite3.Connection, table: Table, rows: Iterable[LedgerRow]) -> None:
    """Append rows to one of the three row tables."""
    marks = ", ".join("?" * len(COLUMNS))
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})", map(_to_sql, rows)
    )


# What a recompute may change in a row of the latest computation; the other columns say
# which row it is (and are the indexed ones: an update in place leaves the indexes alone).
_VALUES = (
    "end_ms",
    "duration_s",
    "run_s",
    "band_wh",
    "energy_cents",
    "depreciation_cents",
    "maintenance_cents",
    "open",
)
_KEY = [k for k, c in enumerate(COLUMNS) if c not in _VALUES]
_VAL = [k for k, c in enumerate(COLUMNS) if c in _VALUES]


def replace_rows(
    conn: sqlite3.Connection, where: str, params: Sequence[Any], rows: Iterable[LedgerRow]
) -> None:
    """Make the `rows` table's rows matching `where` equal to `rows`, writing only what
    differs: a live recompute of a day changes a row or two of it (the open job, the day's
    overhead), and an SD card wears with every page written."""
    stored: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]] = {}
    query = f"SELECT rowid, {', '.join(COLUMNS)} FROM rows WHERE {where}"
    for found in conn.execute(query, params):
        key = tuple(found[k + 1] for k in _KEY)
        stored.setdefault(key, []).append((found[0], tuple(found[k + 1] for k in _VAL)))
    updates, inserts = [], []
    for row in rows:
        values = _to_sql(row)
        same = stored.get(tuple(values[k] for k in _KEY))
        if not same:
            inserts.append(values)
            continue
        rowid, old = same.pop()
        new = tuple(values[k] for k in _VAL)
        if new != old:
            updates.append((*new, rowid))
    conn.executemany(
        "DELETE FROM rows WHERE rowid = ?", [(r,) for left in stored.values() for r, _ in left]
    )
    assignments = ", ".join(f"{c} = ?" for c in _VALUES)
    conn.executemany(f"UPDATE rows SET {assignments} WHERE rowid = ?", updates)
    marks = ", ".join("?" * len(COLUMNS))
    conn.executemany(f"INSERT INTO rows ({', '.join(COLUMNS)}) VALUES ({marks})", inserts)


def select(
    conn: sqlite3.Connection, table: Table, where: str = "1", params: Sequence[Any] = ()
) -> list[LedgerRow]:
    """Rows of one table matching an SQL condition, in a stable order."""
    cursor = conn.execute(
        f"SELECT * FROM {table} WHERE {where} ORDER BY period, start_ms, machine, kind, job_id",
        params,
    )
    return [_from_sql(v) for v in cursor]
