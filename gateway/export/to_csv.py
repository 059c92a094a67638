"""The export as CSV: UTF-8, comma separated, one header line, '.' as decimal point.

Text cells of the lines are quoted, and one that a spreadsheet would run as a formula gets a leading
`'` (OWASP's CSV-injection rule; docs/accounting.md). Numbers are never quoted.
"""

from __future__ import annotations

import csv
from typing import TextIO

from gateway.export.table import FORMULA_START, Cell, Table


def _cell(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(table: Table, out: TextIO) -> None:
    """Write the table to an open text stream."""
    # Quoting every text cell keeps it whole in a spreadsheet that splits at ';' (German
    # Excel): a customer `a;=1+2` cannot become a second cell that starts with '='.
    # The header is ours and stays as it always was: bare column names.
    csv.writer(out, lineterminator="\n").writerow(table.header)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerows([_cell(v) for v in line] for line in table.lines)
