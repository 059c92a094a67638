"""The ledger (SQLite): readings, cost rows, closed periods, adjustments, audit trail."""

from gateway.ledger.ledger import Dropped, Ledger, MachineStatus, Replayed, Selection, Status

__all__ = ["Dropped", "Ledger", "MachineStatus", "Replayed", "Selection", "Status"]
