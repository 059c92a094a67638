"""The ledger's SQLite file: tables, connection settings, one transaction per operation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import LedgerError
from gateway.ledger.rows import BILLING_COLUMNS, TABLE_DDL

_DDL = f"""
-- Readings: one compressed block per machine and UTC day (t_ms // 86400000).
CREATE TABLE chunks (
    machine TEXT NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL,
    t_first INTEGER NOT NULL, t_last INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (machine, day)) WITHOUT ROWID;
-- The latest computation, pending adjustments, closed periods: the same columns.
CREATE TABLE rows {TABLE_DDL};
CREATE INDEX rows_by_machine_day ON rows (machine, day);
CREATE INDEX rows_by_period ON rows (period);
CREATE TABLE adjustments {TABLE_DDL};
CREATE INDEX adjustments_by_origin ON adjustments (origin_period);
CREATE TABLE frozen {TABLE_DDL};
CREATE INDEX frozen_by_period ON frozen (period);
CREATE INDEX frozen_by_origin ON frozen (origin_period);
CREATE TABLE periods (
    period TEXT PRIMARY KEY, closed_at TEXT NOT NULL, closed_by TEXT NOT NULL);
-- jobs.csv: the operator's jobs, and the local-day spans whose jobs a new file replaces.
CREATE TABLE explicit_spans (
    machine TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    PRIMARY KEY (machine, start_ms));
CREATE TABLE explicit_jobs (
    machine TEXT NOT NULL, job_id TEXT NOT NULL, start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL, customer TEXT NOT NULL, PRIMARY KEY (machine, job_id));
-- The engine's repairs per machine and local day (intervals count on their end's day).
CREATE TABLE day_stats (
    machine TEXT NOT NULL, day TEXT NOT NULL, samples INTEGER NOT NULL,
    metered_wh REAL NOT NULL, counter_resets INTEGER NOT NULL,
    implausible_jumps INTEGER NOT NULL, gaps INTEGER NOT NULL, gap_s REAL NOT NULL,
    PRIMARY KEY (machine, day));
-- What replays dropped, per machine (duplicates, conflicting duplicates, ...).
CREATE TABLE counters (
    machine TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (machine, name));
-- Fingerprint of the costing settings each machine's rows were computed with.
CREATE TABLE machines (machine TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL);
"""

# Migration steps: step k takes a ledger from version k to k + 1; a new ledger runs them all
# after _DDL. Append only: a released step never changes.
_BILLING = """
-- Customers and the shop's own product lines: data the owner edits (`shopwatt customer`).
-- name_key: the display name case- and space-folded, so one customer is never two.
-- merged_into: a customer merged into another (its id still resolves, to the other).
CREATE TABLE customers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL, vat_id TEXT NOT NULL,
    price_list TEXT NOT NULL, internal INTEGER NOT NULL, merged_into TEXT NOT NULL);
CREATE UNIQUE INDEX customers_by_name_key ON customers (name_key) WHERE merged_into = '';
-- Who a job was for, made after the fact (`shopwatt job assign`): keyed by an instant
-- inside the job, so it follows the job that covers that instant through recomputes.
CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, machine TEXT NOT NULL, at_ms INTEGER NOT NULL,
    job_id TEXT NOT NULL, customer TEXT NOT NULL, order_id TEXT NOT NULL,
    parts INTEGER NOT NULL, scrap INTEGER NOT NULL, made_at TEXT NOT NULL,
    made_by TEXT NOT NULL);
CREATE INDEX assignments_by_time ON assignments (machine, at_ms);
-- `shopwatt job split`: the instants where a job becomes two.
CREATE TABLE splits (
    machine TEXT NOT NULL, at_ms INTEGER NOT NULL, job_id TEXT NOT NULL,
    made_at TEXT NOT NULL, made_by TEXT NOT NULL, PRIMARY KEY (machine, at_ms));
""" + "".join(
    f"ALTER TABLE {table} ADD COLUMN {column} {kind};\n"
    for table in ("rows", "adjustments", "frozen")
    for column, kind in BILLING_COLUMNS.items()
)
_MEMBERS = """
-- Members: customers with a membership (`shopwatt member`). hours: which hours of a job
-- count (run_hours or job_hours); weights: JSON {machine or '*': credits per hour, as text};
-- low_below: the balance (credits, text) under which `status` and the dashboard warn.
CREATE TABLE members (
    id TEXT PRIMARY KEY, card TEXT NOT NULL, hours TEXT NOT NULL, weights TEXT NOT NULL,
    low_below TEXT NOT NULL, made_at TEXT NOT NULL, made_by TEXT NOT NULL);
CREATE UNIQUE INDEX members_by_card ON members (card) WHERE card != '';
-- Prepaid blocks (`shopwatt member topup`): hours as exact decimal text.
CREATE TABLE blocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL, hours TEXT NOT NULL,
    price_cents INTEGER NOT NULL, bought TEXT NOT NULL, valid_until TEXT NOT NULL,
    made_at TEXT NOT NULL, made_by TEXT NOT NULL);
-- Subscriptions: hours granted each month from `first` to `last` ('' : until ended).
CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL, hours TEXT NOT NULL,
    price_cents INTEGER NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL,
    carry INTEGER NOT NULL, cap TEXT NOT NULL, made_at TEXT NOT NULL, made_by TEXT NOT NULL);
"""
_STEPS: tuple[str, ...] = (_BILLING, _MEMBERS)
SCHEMA_VERSION = 1 + len(_STEPS)


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open the ledger (creating it when asked); refuses a file from a newer shopwatt."""
    if not create and not path.exists():
        raise LedgerError(f"{path}: no ledger yet; run `shopwatt replay` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are explicit (see transaction()), one per operation.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.row_factory = sqlite3.Row
    # A Pi's SD card: in WAL mode NORMAL syncs at checkpoints, not at every commit; a power
    # cut can lose the last operation, never corrupt the ledger (set before the first write).
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and create:
            conn.execute("PRAGMA journal_mode = WAL")
            # One script, one transaction: a half-created ledger never exists.
            script = _DDL + "".join(_STEPS)
            conn.executescript(f"BEGIN; {script} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version == 0:
            # Empty: being created by another process right now, or never finished.
            raise LedgerError(f"{path}: no ledger yet; run `shopwatt replay` first")
        elif version < SCHEMA_VERSION:
            _migrate(conn)
        elif version != SCHEMA_VERSION:
            raise LedgerError(
                f"{path}: ledger schema version {version}, this shopwatt reads {SCHEMA_VERSION}"
            )
    except sqlite3.DatabaseError as err:
        conn.close()
        raise LedgerError(f"{path}: not a shopwatt ledger ({err})") from None
    except LedgerError:
        conn.close()
        raise
    return conn


def _statements(script: str) -> list[str]:
    """An SQL script as single statements (executescript would commit on its own)."""
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending)
            pending = ""
    return found


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a ledger of an older shopwatt up to SCHEMA_VERSION, all steps in one transaction.

    The version is read again under the write lock: two processes opening an old ledger at
    once migrate it once.
    """
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in _STEPS[version - 1 :]:
            for statement in _statements(step):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All or nothing: commit when the block ends, roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
