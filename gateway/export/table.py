"""The export's rows and columns, with every number as the Decimal that gets printed.

Stable column names (added, never renamed); `energy_kwh` is the sum of the printed band
columns, `total_cost` the sum of the three printed costs, `margin` the printed price minus
the printed total cost, so every line adds up as the accountant reads it. Grouped views sum
the printed values of the lines they group, and end with a total line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.ledger import Selection
from gateway.ledger.bill import Charges, RowCharges
from gateway.ledger.rows import ZERO, LedgerRow
from gateway.ledger.units import money

By = Literal["job", "customer", "machine", "order"]
BY: tuple[By, ...] = ("job", "customer", "machine", "order")
Cell = str | Decimal
ROW_TEXT = ("kind", "job_id", "machine", "customer", "start", "end")
PER_PART = ("kwh_per_part", "cost_per_part")
# Added after `currency` (the older columns keep their places).
BILLING = ("order", "parts", "scrap", *PER_PART, "price", "margin", "corrects")
# Group names of the lines that are not a customer's (never a blank name).
OVERHEAD, UNASSIGNED, NO_ORDER = "overhead", "(unassigned)", "(no order)"
_PER_PART_PLACES = {"kwh_per_part": Decimal("0.001"), "cost_per_part": Decimal("0.0001")}
# A spreadsheet runs a text cell that starts with one of these as a formula (OWASP,
# "CSV Injection"); a customer or job id may come from anyone who books a job.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Table:
    """A header and its lines; numbers are Decimals with their printed precision."""

    header: list[str]
    lines: list[list[Cell]]
    currency: str

    def column(self, name: str) -> list[Cell]:
        """All values of one column."""
        k = self.header.index(name)
        return [line[k] for line in self.lines]


def _local(t_ms: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(tz).isoformat(timespec="seconds")


def _plain(d: Decimal) -> Decimal:
    return abs(d) if d == 0 else d  # no '-0.000' in a spreadsheet


# The month's demand charge and fixed charges as shared out to rows, and the CO2 of the
# row's energy, then the own solar it used and what that changes in its energy cost
# (docs/tariffs.md): added after total_cost, which stays energy + depreciation +
# maintenance.
CHARGES = ("demand_cost", "fixed_cost", "co2_kg", "solar_kwh", "solar_cost")


def numbers_header(band_names: Sequence[str]) -> list[str]:
    """The numeric columns, in the export's order."""
    return [*ZERO.printed(band_names), *CHARGES]


def _numbers(row: LedgerRow, band_names: Sequence[str], charges: Charges) -> list[Decimal]:
    # Adjustment rows correct energy and hours; a month's charges are shared once, at
    # its close (or now, while it is open), so they carry none.
    c = RowCharges() if row.kind == "adjustment" else charges.get(row.origin_key(), RowCharges())
    co2_kg = Decimal(c.co2_g).scaleb(-3)
    printed = [
        *row.amounts.printed(band_names).values(),
        money(c.demand_cents),
        money(c.fixed_cents),
        co2_kg,
        Decimal(c.solar_wh).scaleb(-3),
        money(c.solar_cents),
    ]
    return [_plain(d) for d in printed]


def per_part(name: str, value: Decimal, parts: Decimal) -> Cell:
    """Per good part, half up; empty when the parts are not known (0) or negative."""
    if parts <= 0:
        return ""
    return _plain((value / parts).quantize(_PER_PART_PLACES[name], rounding=ROUND_HALF_UP))


def margin_of(price: Cell, total: Decimal) -> Cell:
    """Price minus total cost; empty where there is no price."""
    return "" if price == "" else _plain(Decimal(price) - total)


def _billing(row: LedgerRow, energy: Decimal, total: Decimal) -> list[Cell]:
    a = row.amounts
    parts = Decimal(a.parts)
    price: Cell = "" if a.price_cents is None else money(a.price_cents)
    return [
        row.order,
        parts,
        Decimal(a.scrap),
        per_part("kwh_per_part", energy, parts),
        per_part("cost_per_part", total, parts),
        price,
        margin_of(price, total),
        row.origin_period,
    ]


def build_table(
    selection: Selection,
    tz: ZoneInfo,
    currency: str,
    by: By = "job",
    charges: Charges | None = None,
) -> Table:
    """One line per row (by='job'), or the lines summed per customer, machine or order.

    charges: each row's demand and fixed cents and CO2 (Ledger.charges); none: zero.
    """
    names = selection.band_names
    header = [*ROW_TEXT, *numbers_header(names), "currency", *BILLING]
    energy_k, total_k = (header.index(n) - len(ROW_TEXT) for n in ("energy_kwh", "total_cost"))
    lines: list[list[Cell]] = []
    for row in selection.rows:
        numbers = _numbers(row, names, charges or {})
        text = [row.kind, row.job_id, row.machine, row.customer]
        times = [_local(row.start_ms, tz), _local(row.end_ms, tz)]
        billing = _billing(row, numbers[energy_k], numbers[total_k])
        lines.append([*text, *times, *numbers, currency, *billing])
    table = Table(header, lines, currency)
    return table if by == "job" else group(table, by)


def _key(line: dict[str, Cell], by: By) -> tuple[str, ...]:
    """The group a line belongs to: overhead and jobs without a customer are named."""
    if by == "machine":
        return (str(line["machine"]),)
    if not line["job_id"]:  # an overhead row, or an adjustment of one
        return (OVERHEAD,) if by == "customer" else (OVERHEAD, "")
    customer = str(line["customer"]) or UNASSIGNED
    return (customer,) if by == "customer" else (customer, str(line["order"]) or NO_ORDER)


def _order(key: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """Customers (or machines) by name, then the unassigned jobs, then overhead."""
    return ({UNASSIGNED: 1, OVERHEAD: 2}.get(key[0], 0), key)


def group(table: Table, by: By) -> Table:
    """Sum the lines per customer, per machine, or per customer and order, plus a total.

    Durations are summed over jobs only (an overhead row's day is no time anyone worked);
    price and margin over the priced lines; per-part figures come from the sums.
    """
    names = table.header
    amounts = names[names.index("duration_h") : names.index("currency")]
    groups: dict[tuple[str, ...], list[dict[str, Cell]]] = {}
    for values in table.lines:
        line = dict(zip(names, values, strict=True))
        groups.setdefault(_key(line, by), []).append(line)
    keys = ["customer", "order"] if by == "order" else [by]
    header = [*keys, "rows", *amounts, "currency", "parts", "scrap", *PER_PART, "price", "margin"]
    everything = [line for members in groups.values() for line in members]
    total_key = ("total", *[""] * (len(keys) - 1))
    ordered = [(key, groups[key]) for key in sorted(groups, key=_order)]
    lines = [
        _group_line(list(key), members, amounts, table.currency)
        for key, members in [*ordered, (total_key, everything)]
    ]
    return Table(header, lines, table.currency)


def _sum(name: str, lines: list[dict[str, Cell]]) -> Decimal:
    return _plain(sum((Decimal(line[name]) for line in lines), Decimal(0)))


def _group_line(
    key: list[str], members: list[dict[str, Cell]], amounts: list[str], currency: str
) -> list[Cell]:
    jobs = [line for line in members if line["job_id"]]
    sums: dict[str, Cell] = {name: _sum(name, members) for name in [*amounts, "parts", "scrap"]}
    sums["duration_h"] = _sum("duration_h", jobs) if jobs else ""
    for name in ("price", "margin"):
        priced = [line for line in members if line[name] != ""]
        sums[name] = _sum(name, priced) if priced else ""
    parts = Decimal(sums["parts"])
    each_part = [
        per_part(name, Decimal(sums[of]), parts)
        for name, of in zip(PER_PART, ("energy_kwh", "total_cost"), strict=True)
    ]
    head = [*key, Decimal(len(members)), *(sums[name] for name in amounts), currency]
    return [*head, sums["parts"], sums["scrap"], *each_part, sums["price"], sums["margin"]]
