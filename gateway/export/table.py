"""The export's rows and columns, with every number as the Decimal that gets printed.

Stable column names; `energy_kwh` is the sum of the printed band columns, `total_cost`
the sum of the three printed costs, so every line adds up as the accountant reads it.
Grouped views sum the printed values of the lines they group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.ledger import Selection
from gateway.ledger.bill import Charges, RowCharges
from gateway.ledger.rows import ZERO, LedgerRow
from gateway.ledger.units import money

By = Literal["job", "customer", "machine"]
BY: tuple[By, ...] = ("job", "customer", "machine")
Cell = str | Decimal
ROW_TEXT = ("kind", "job_id", "machine", "customer", "start", "end")
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


def build_table(
    selection: Selection,
    tz: ZoneInfo,
    currency: str,
    by: By = "job",
    charges: Charges | None = None,
) -> Table:
    """One line per row (by='job'), or the lines summed per customer or per machine.

    charges: each row's demand and fixed cents and CO2 (Ledger.charges); none: zero.
    """
    names = selection.band_names
    lines: list[list[Cell]] = [
        [
            row.kind,
            row.job_id,
            row.machine,
            row.customer,
            _local(row.start_ms, tz),
            _local(row.end_ms, tz),
            *_numbers(row, names, charges or {}),
            currency,
        ]
        for row in selection.rows
    ]
    table = Table([*ROW_TEXT, *numbers_header(names), "currency"], lines, currency)
    return table if by == "job" else group(table, by)


def group(table: Table, by: Literal["customer", "machine"]) -> Table:
    """Sum the numeric columns per customer or per machine (sorted; '' = no customer)."""
    key = table.header.index(by)
    first, last = table.header.index("duration_h"), table.header.index("currency")
    sums: dict[str, list[Decimal]] = {}
    counts: dict[str, int] = {}
    for line in table.lines:
        name = str(line[key])
        values = [Decimal(v) for v in line[first:last]]
        sums[name] = (
            [a + b for a, b in zip(sums[name], values, strict=True)] if name in sums else values
        )
        counts[name] = counts.get(name, 0) + 1
    lines: list[list[Cell]] = [
        [name, Decimal(counts[name]), *sums[name], table.currency] for name in sorted(sums)
    ]
    return Table([by, "rows", *table.header[first:last], "currency"], lines, table.currency)
