"""The accountant's export: the ledger's rows as CSV or XLSX, per job, customer or machine."""

from gateway.export.table import BY, Table, build_table
from gateway.export.to_csv import write_csv
from gateway.export.to_xlsx import write_xlsx

__all__ = ["BY", "Table", "build_table", "write_csv", "write_xlsx"]
