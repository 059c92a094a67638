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
from gateway.ledger.rows import ZERO, LedgerRow

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


def numbers_header(band_names: Sequence[str]) -> list[str]:
    """The numeric columns, in the export's order."""
    return list(ZERO.printed(band_names))


def _numbers(row: LedgerRow, band_names: Sequence[str]) -> list[Decimal]:
    return [_plain(d) for d in row.amounts.printed(band_names).values()]


def build_table(selection: Selection, tz: ZoneInfo, currency: str, by: By = "job") -> Table:
    """One line per row (by='job'), or the lines summed per customer or per machine."""
    names = selection.band_names
    lines: list[list[Cell]] = [
        [
            row.kind,
            row.job_id,
            row.machine,
            row.customer,
            _local(row.start_ms, tz),
            _local(row.end_ms, tz),
            *_numbers(row, names),
            currency,
        ]
        for row in selection.rows
    ]
    table = Table([*ROW_TEXT, *numbers_header(names), "currency"], lines, currency)
    return table if by == "job" else group(table, by)


def group(table: Table, by: Literal["customer", "machine"]) -> Table:
    """Sum the numeric columns per customer or per machine (sorted; '' = no customer)."""
    key = table.header.index(by)
    first, last = table.header.index("duration_h"), table.header.index("total_cost") + 1
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
