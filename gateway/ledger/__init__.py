"""The ledger (SQLite): readings, cost rows, closed periods, adjustments, audit trail."""

from gateway.ledger.ledger import Ledger, MachineStatus, Replayed, Selection, Status

__all__ = ["Ledger", "MachineStatus", "Replayed", "Selection", "Status"]
