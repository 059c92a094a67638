"""The accountant's export: the ledger's rows as CSV or XLSX, per job, customer or machine.

`write_xlsx` lives in gateway.export.to_xlsx and is not re-exported: openpyxl loads only
when an XLSX is written, not with every import of the package (`shopwatt run`).
"""

from gateway.export.table import BY, Table, build_table
from gateway.export.to_csv import write_csv

__all__ = ["BY", "Table", "build_table", "write_csv"]
