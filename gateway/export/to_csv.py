"""The export as CSV: UTF-8, comma separated, one header line, '.' as decimal point; or,
with the excel-eu dialect, what Excel in Europe opens directly: ';' between fields, ','
as decimal point and a UTF-8 byte order mark (else Excel guesses the encoding)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Literal, TextIO

from gateway.export.table import Cell, Table

Dialect = Literal["plain", "excel-eu"]
DIALECTS: tuple[Dialect, ...] = ("plain", "excel-eu")


def _text(value: Cell, dialect: Dialect) -> str:
    if dialect == "excel-eu" and isinstance(value, Decimal):
        return str(value).replace(".", ",")
    return str(value)


def write_csv(table: Table, out: Path | TextIO, dialect: Dialect = "plain") -> None:
    """Write the table to a file path or an open text stream."""
    if isinstance(out, Path):
        with out.open("w", newline="", encoding="utf-8") as fh:
            write_csv(table, fh, dialect)
        return
    if dialect == "excel-eu":
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=";" if dialect == "excel-eu" else ",", lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([_text(v, dialect) for v in line] for line in table.lines)
