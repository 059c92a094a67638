"""The export as XLSX: the rows sheet, plus totals per machine and per customer.

Text is always text (a customer named `=1+2` is a string cell, never a formula), and the
file carries no clock time (a fixed 1980-01-01): the same rows give the same bytes on every export.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from gateway.export.table import FORMULA_START, Cell, Table, group

_BOLD = Font(bold=True)
# The earliest time a zip entry can carry; also the document properties' time.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


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
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                # openpyxl makes any string starting with '=' a formula: force text, and
                # quotePrefix keeps it text when someone edits the cell in Excel or Calc.
                cell.data_type = TYPE_STRING
                cell.quotePrefix = cell.value.startswith(FORMULA_START)
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


def write_xlsx(table: Table, out: BinaryIO) -> None:
    """Write the per-row table and its totals per machine and per customer."""
    wb = Workbook()
    rows = wb.active
    assert rows is not None
    rows.title = "rows"
    _sheet(rows, table, total_row=False)
    for by in ("machine", "customer"):
        _sheet(wb.create_sheet(f"by {by}"), group(table, by), total_row=True)
    # A fixed creation and modification time in the document properties ...
    wb.properties.created = wb.properties.modified = datetime(*_ZIP_EPOCH)
    staged = io.BytesIO()
    with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).write_data()  # not wb.save(): it stamps `modified` = now
    # ... nor in the zip entries, which zipfile stamps with the clock.
    with zipfile.ZipFile(staged) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, _ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, src.read(info))
