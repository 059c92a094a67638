"""The audit trail: who changed the ledger, when, and with what (for the accountant)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    """One operation that changed the ledger."""

    at: str  # UTC, ISO 8601
    who: str  # OS user
    action: str  # replay, recompute, close
    detail: dict[str, Any]


def record(conn: sqlite3.Connection, entry: Entry) -> None:
    """Append an entry (inside the operation's transaction: no entry for a failed run)."""
    conn.execute(
        "INSERT INTO audit (at, who, action, detail) VALUES (?, ?, ?, ?)",
        (entry.at, entry.who, entry.action, json.dumps(entry.detail, sort_keys=True)),
    )


def recent(conn: sqlite3.Connection, limit: int) -> list[Entry]:
    """The latest entries, newest first."""
    found = conn.execute(
        "SELECT at, who, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [Entry(e["at"], e["who"], e["action"], json.loads(e["detail"])) for e in found]
