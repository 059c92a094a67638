"""The export as XLSX: the rows sheet, plus totals per machine and per customer."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from gateway.export.table import Cell, Table, group

_BOLD = Font(bold=True)


def _format(name: str) -> str:
    if name.endswith("_cost"):
        return "0.00"
    if name.startswith("kwh_") or name == "energy_kwh":
        return "0.000"
    if name.endswith("_h"):
        return "0.0000"
    return "0"


def _sheet(ws: Worksheet, table: Table, total_row: bool) -> None:
    ws.append(table.header)
    for cell in ws[1]:
        cell.font = _BOLD
    lines: list[list[Cell]] = list(table.lines)
    if total_row:
        first = table.header.index("rows")
        total: list[Cell] = ["total"]
        for k in range(first, len(table.header) - 1):
            total.append(sum((Decimal(line[k]) for line in table.lines), Decimal(0)))
        lines.append([*total, table.currency])
    for line in lines:
        ws.append(line)
    if total_row and table.lines:
        for cell in ws[ws.max_row]:
            cell.font = _BOLD
    for k, name in enumerate(table.header, start=1):
        letter = ws.cell(row=1, column=k).column_letter
        ws.column_dimensions[letter].width = max(10, len(name) + 2)
        for row in ws.iter_rows(min_row=2, min_col=k, max_col=k):
            if isinstance(row[0].value, Decimal):
                row[0].number_format = _format(name)
    ws.freeze_panes = "A2"


def write_xlsx(table: Table, out: Path) -> None:
    """Write the per-row table and its totals per machine and per customer."""
    wb = Workbook()
    rows = wb.active
    assert rows is not None
    rows.title = "rows"
    _sheet(rows, table, total_row=False)
    for by in ("machine", "customer"):
        _sheet(wb.create_sheet(f"by {by}"), group(table, by), total_row=True)
    wb.save(out)
