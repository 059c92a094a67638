"""The export as XLSX: the rows sheet, plus sums per machine, per customer and per order."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from gateway.export.table import Table, group

_BOLD = Font(bold=True)


def _format(name: str) -> str:
    if name == "cost_per_part":
        return "0.0000"
    if name.endswith("_cost") or name in ("price", "margin"):
        return "0.00"
    if name.startswith("kwh_") or name in ("energy_kwh", "kwh_per_part"):
        return "0.000"
    if name.endswith("_h"):
        return "0.0000"
    return "0"


def _sheet(ws: Worksheet, table: Table, total_row: bool) -> None:
    ws.append(table.header)
    for cell in ws[1]:
        cell.font = _BOLD
    for line in table.lines:
        ws.append([None if v == "" else v for v in line])
    if total_row and table.lines:
        for cell in ws[ws.max_row]:
            cell.font = _BOLD
    for k, name in enumerate(table.header, start=1):
        letter = ws.cell(row=1, column=k).column_letter
        ws.column_dimensions[letter].width = max(10, len(name) + 2)
        for row in ws.iter_rows(min_row=2, min_col=k, max_col=k):
            if not isinstance(row[0].value, str):
                row[0].number_format = _format(name)
    ws.freeze_panes = "A2"


def write_xlsx(table: Table, out: Path) -> None:
    """Write the per-row table and its sums per machine, per customer and per order."""
    wb = Workbook()
    rows = wb.active
    assert rows is not None
    rows.title = "rows"
    _sheet(rows, table, total_row=False)
    for by in ("machine", "customer", "order"):
        _sheet(wb.create_sheet(f"by {by}"), group(table, by), total_row=True)
    wb.save(out)
