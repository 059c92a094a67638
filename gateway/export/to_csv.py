"""The export as CSV: UTF-8, comma separated, one header line, '.' as decimal point."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from gateway.export.table import Table


def write_csv(table: Table, out: Path | TextIO) -> None:
    """Write the table to a file path or an open text stream."""
    if isinstance(out, Path):
        with out.open("w", newline="", encoding="utf-8") as fh:
            write_csv(table, fh)
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([str(v) for v in line] for line in table.lines)
