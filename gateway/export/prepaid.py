"""Members' prepaid hours as tables: the accountant's deferred-revenue view and a member's
statement (docs/members.md).

The prepaid view has one line per member and a total line; each reconciles:
opening + received - recognised = closing (cents, in the site currency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import BinaryIO

from gateway.engine.drawdown import SCALE, Deferred
from gateway.export.table import Cell, Table
from gateway.export.to_csv import write_csv_binary
from gateway.ledger.membership import Statement
from gateway.ledger.units import money

MONEY = ("opening", "received", "recognised", "closing", "charged")
PREPAID_HEADER = ["member", "name", *MONEY[:4], "currency"]
STATEMENT_HEADER = ["date", "kind", "block", "machine", "job_id", "hours", "credits"]
STATEMENT_HEADER += ["charged_credits", "charged", "carried_credits"]


def credits(value: int) -> Decimal:
    """Integer credits as the exact decimal, with at least 4 places (hours' precision)."""
    exact = Decimal(value) / SCALE
    places = exact.quantize(Decimal("0.0001"))
    return places if places == exact else exact.normalize()


def prepaid_table(found: Sequence[Deferred], names: Mapping[str, str], currency: str) -> Table:
    """Per member: opening, received, recognised, closing; then the total line."""
    lines: list[list[Cell]] = []
    for d in found:
        amounts = [money(c) for c in (d.opening, d.received, d.recognised, d.closing)]
        lines.append([d.member, names.get(d.member, d.member), *amounts, currency])
    total = [sum(d.opening for d in found), sum(d.received for d in found)]
    total += [sum(d.recognised for d in found), sum(d.closing for d in found)]
    lines.append(["total", "", *(money(c) for c in total), currency])
    return Table(list(PREPAID_HEADER), lines, currency)


def statement_table(shown: Statement, currency: str) -> tuple[list[tuple[str, str]], Table]:
    """A member's month: title block and the lines between opening and closing balance."""
    blank: list[Cell] = [""] * len(STATEMENT_HEADER)
    k = STATEMENT_HEADER.index("credits")
    opening, closing = list(blank), list(blank)
    opening[0], opening[1], opening[k] = shown.period, "opening balance", credits(shown.opening)
    closing[0], closing[1], closing[k] = shown.period, "closing balance", credits(shown.closing)
    lines: list[list[Cell]] = [opening]
    for x in shown.lines:
        lines.append(
            [
                x.day.isoformat(),
                x.kind,
                x.block,
                x.machine,
                x.job_id,
                x.hours if x.job_id else "",
                "" if x.kind == "carry" else credits(x.credits),  # a carry moves nothing out
                credits(x.charged_credits) if x.charged_credits else "",
                "" if not x.charged_cents else money(x.charged_cents),
                credits(x.carried) if x.carried else "",
            ]
        )
    lines.append(closing)
    m = shown.member
    title = [(f"Prepaid hours {m.name}", ""), ("member", m.id), ("month", shown.period)]
    title.append(("hours counted", m.hours.replace("_", " ")))
    weights = ", ".join(f"{k} {w}" for k, w in (m.weights or {}).items())
    title.append(("credits per hour", weights))
    return title, Table(list(STATEMENT_HEADER), lines, currency)


def write_view_file(
    table: Table, title: Sequence[tuple[str, str]], out: BinaryIO, *, xlsx: bool
) -> None:
    """A member view (statement, prepaid) as CSV or a one-sheet XLSX: the CLI's file and
    the web page's download, byte for byte."""
    if xlsx:
        from gateway.export.to_xlsx import write_one_sheet  # openpyxl: only for an XLSX

        write_one_sheet(table, title, out)
    else:
        write_csv_binary(table, out)
