"""The export as CSV: UTF-8, comma separated, one header line, '.' as decimal point; or,
with the excel-eu dialect, what Excel in Europe opens directly: ';' between fields, ','
as decimal point and a UTF-8 byte order mark (else Excel guesses the encoding).

Text cells of the lines are quoted, and one that a spreadsheet would run as a formula gets a leading
`'` (OWASP's CSV-injection rule; docs/accounting.md). Numbers are never quoted.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import BinaryIO, Literal, TextIO

from gateway.export.table import FORMULA_START, Cell, Table

Dialect = Literal["plain", "excel-eu"]
DIALECTS: tuple[Dialect, ...] = ("plain", "excel-eu")


class _CommaDecimal(Decimal):
    """A number printed with a decimal comma; still a number to the csv writer (unquoted)."""

    def __str__(self) -> str:
        return super().__str__().replace(".", ",")


def _cell(value: Cell, dialect: Dialect) -> Cell:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if dialect == "excel-eu" and isinstance(value, Decimal):
        return _CommaDecimal(value)
    return value


def write_csv(table: Table, out: TextIO, dialect: Dialect = "plain") -> None:
    """Write the table to an open text stream."""
    delimiter = ";" if dialect == "excel-eu" else ","
    if dialect == "excel-eu":
        out.write("\ufeff")
    # Quoting every text cell keeps it whole in a spreadsheet that splits at ';' (German
    # Excel): a customer `a;=1+2` cannot become a second cell that starts with '='.
    # The header is ours and stays as it always was: bare column names.
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(table.header)
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerows([_cell(v, dialect) for v in line] for line in table.lines)


def write_csv_binary(table: Table, out: BinaryIO, dialect: Dialect = "plain") -> None:
    """Write the table as UTF-8 into a binary file, which stays open (for outfile's sync)."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    write_csv(table, text, dialect)
    text.flush()
    text.detach()
