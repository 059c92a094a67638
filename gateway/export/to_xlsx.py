"""The export as XLSX, as an accountant opens it: one sheet per view (rows, by machine, by
customer, by order), each with a title block (site, period, tariff, closed or open), a bold
frozen header with an autofilter, real dates and numbers, a bold total line, columns as
wide as their content, printed landscape and one page wide.

Text is always text (a customer named `=1+2` is a string cell, never a formula), and the
file carries no clock time (a fixed 1980-01-01): the same rows give the same bytes on every export.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell.cell import TYPE_STRING
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from gateway.export.prepaid import MONEY
from gateway.export.statement import Statement
from gateway.export.table import FORMULA_START, Cell, Table, group

_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=13)
_WIDEST = 40  # characters: a long customer name wraps the sheet no wider than this
_TIME_COLUMNS = ("start", "end")
# A title block: (label, value) lines above the table, the first label the sheet's heading.
Title = Sequence[tuple[str, str]]
# The earliest time a zip entry can carry; also the document properties' time.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _format(name: str) -> str:
    if name == "cost_per_part":
        return "0.0000"
    if name.endswith("_cost") or name in ("price", "margin", "net", "vat", "gross", *MONEY):
        return "#,##0.00"
    if name.endswith("credits"):
        return "0.0000"
    if name.startswith("kwh_") or name in ("energy_kwh", "kwh_per_part"):
        return "0.000"
    if name.endswith("_h") or name == "hours":
        return "0.0000"
    if name in _TIME_COLUMNS:
        return "yyyy-mm-dd hh:mm:ss"
    if name == "date":
        return "yyyy-mm-dd"
    return "0"


def _value(name: str, v: Cell) -> object:
    """What the cell holds: a local date and time for the ISO times (Excel keeps no offset;
    the local wall clock is what the accountant reads), nothing for an empty cell."""
    if v == "":
        return None
    if name in _TIME_COLUMNS and isinstance(v, str):
        return datetime.fromisoformat(v).replace(tzinfo=None)
    return v


def _total(table: Table) -> list[Cell]:
    """The rows sheet's total line: the grouped views' `total` line, the same sums (hours of
    jobs only, price and margin of the priced lines, per part from the sums)."""
    grouped = group(table, "machine")
    sums = dict(zip(grouped.header[1:], grouped.lines[-1][1:], strict=True))
    return ["total", *(sums.get(name, "") for name in table.header[1:])]


def _append(ws: Worksheet, values: list[object]) -> None:
    ws.append(values)
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            # openpyxl makes any string starting with '=' a formula: force text, and
            # quotePrefix keeps it text when someone edits the cell in Excel or Calc.
            cell.data_type = TYPE_STRING
            cell.quotePrefix = cell.value.startswith(FORMULA_START)


def write_sheet(ws: Worksheet, title: Title, table: Table, total: bool) -> None:
    """One view on one sheet; `total`: its last line is a total (printed bold)."""
    for k, (label, value) in enumerate(title):
        _append(ws, [label, value] if value else [label])
        ws.cell(row=k + 1, column=1).font = _TITLE if k == 0 else _BOLD
    ws.append([])
    head = len(title) + 2  # the header's row, below the title block and one empty row
    ws.append(table.header)
    for cell in ws[head]:
        cell.font = _BOLD
    for line in table.lines:
        _append(ws, [_value(n, v) for n, v in zip(table.header, line, strict=True)])
    if total and table.lines:
        for cell in ws[ws.max_row]:
            cell.font = _BOLD
    for k, name in enumerate(table.header, start=1):
        width = len(name)
        for (cell,) in ws.iter_rows(min_row=head + 1, min_col=k, max_col=k):
            if cell.value is None:
                continue
            if not isinstance(cell.value, str):
                cell.number_format = _format(name)
            shown = 19 if isinstance(cell.value, datetime) else len(str(cell.value))
            width = max(width, shown)
        ws.column_dimensions[get_column_letter(k)].width = min(width + 2, _WIDEST)
    last = get_column_letter(len(table.header))
    ws.freeze_panes = ws.cell(row=head + 1, column=1)
    ws.auto_filter.ref = f"A{head}:{last}{ws.max_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{head}:{head}"


def _save(wb: Workbook, out: BinaryIO) -> None:
    """The workbook with no clock time in it: the same content, the same bytes."""
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


def write_xlsx(table: Table, out: BinaryIO, title: Title = ()) -> None:
    """Write the per-row table and its sums per machine, per customer and per order."""
    wb = Workbook()
    rows = wb.active
    assert rows is not None
    rows.title = "rows"
    heading = list(title) or [("shopwatt export", "")]
    with_total = Table(table.header, [*table.lines, _total(table)], table.currency)
    write_sheet(rows, heading, with_total, total=True)
    for by in ("machine", "customer", "order"):
        view = [(f"{heading[0][0]}: by {by}", heading[0][1]), *heading[1:]]
        write_sheet(wb.create_sheet(f"by {by}"), view, group(table, by), total=True)
    _save(wb, out)


def write_one_sheet(table: Table, title: Title, out: BinaryIO) -> None:
    """One table on one sheet under its title block, its last line bold (a total)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    write_sheet(ws, title, table, total=True)
    _save(wb, out)  # no clock time in it: the CLI's file and the page's download are equal


def write_statement_xlsx(statement: Statement, out: BinaryIO) -> None:
    """A customer's statement on one sheet, its gross line bold."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "statement"
    write_sheet(ws, statement.title, statement.table, total=True)
    _save(wb, out)
