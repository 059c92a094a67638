"""The ledger's SQLite file: tables, connection settings, one transaction per operation."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import LedgerError
from gateway.ledger.rows import BILLING_COLUMNS, TABLE_DDL

_DDL = f"""
-- Readings: compressed blocks per machine and UTC day (t_ms // 86400000); since schema
-- version 15 a day is several rows (gateway/ledger/chunks.py), see _MIGRATIONS.
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
-- jobs.csv: the operator's jobs, and the local-day spans in which they replace detection.
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


# Each step upgrades the schema by one version, one SQL statement per string (a new ledger
# runs them all after _DDL); steps are only ever added, so a ledger of any older shopwatt
# opens by running the ones it lacks. Steps only create tables (see connect(): readonly).
def _rowid_blocks(table: str, columns: str, key: str) -> tuple[str, ...]:
    """Statements that rebuild a table of blocks as a rowid table with a unique index on
    key, its rows copied (columns: all of them, in the table's order; again when run again)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table}_rowid ({columns})",
        f"DROP INDEX IF EXISTS {table}_by_key",
        f"CREATE UNIQUE INDEX {table}_by_key ON {table}_rowid ({key})",
        f"INSERT INTO {table}_rowid SELECT * FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_rowid RENAME TO {table}",
    )


_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1 -> 2: `shopwatt run`'s state (gateway/ledger/live.py). Before, the service created
    # these tables itself, with these columns: IF NOT EXISTS adopts them and their rows.
    (
        "CREATE TABLE IF NOT EXISTS sensor_state (sensor TEXT PRIMARY KEY, state TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS machine_view (machine TEXT PRIMARY KEY, view TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS pending_recompute (
            machine TEXT PRIMARY KEY, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS live_jobs (
            machine TEXT NOT NULL, job TEXT NOT NULL, start_ms INTEGER, stop_ms INTEGER,
            customer TEXT NOT NULL, parts INTEGER, src TEXT NOT NULL,
            PRIMARY KEY (machine, job))""",
    ),
    # 2 -> 3: the demand and fixed charges and the CO2 of closed months as they were put on
    # rows at the close (gateway/ledger/bill.py): the export's demand_cost, fixed_cost, co2_kg.
    (
        """CREATE TABLE IF NOT EXISTS frozen_charges (
            period TEXT NOT NULL, kind TEXT NOT NULL, machine TEXT NOT NULL,
            job_id TEXT NOT NULL, customer TEXT NOT NULL, day TEXT NOT NULL,
            demand_cents INTEGER NOT NULL, fixed_cents INTEGER NOT NULL, co2_g INTEGER NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS frozen_charges_by_period ON frozen_charges (period)",
    ),
    # 3 -> 4: price series from `shopwatt prices import` (gateway/ledger/prices.py).
    (
        """CREATE TABLE IF NOT EXISTS prices (
            series TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
            price REAL NOT NULL, PRIMARY KEY (series, start_ms)) WITHOUT ROWID""",
    ),
    # 4 -> 5: live readings as append-only segments, compacted into parts, then chunks
    # (gateway/ledger/chunks.py), so that storing a batch costs the batch, not its day.
    (
        """CREATE TABLE IF NOT EXISTS segments (
            id INTEGER PRIMARY KEY, machine TEXT NOT NULL, day INTEGER NOT NULL,
            n INTEGER NOT NULL, t_first INTEGER NOT NULL, t_last INTEGER NOT NULL,
            data BLOB NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS parts (
            machine TEXT NOT NULL, day INTEGER NOT NULL, level INTEGER NOT NULL,
            t_first INTEGER NOT NULL, n INTEGER NOT NULL, t_last INTEGER NOT NULL,
            data BLOB NOT NULL, PRIMARY KEY (machine, day, level, t_first)) WITHOUT ROWID""",
    ),
    # 5 -> 6: the month's bill figures beside its rows' charges as they were at the close
    # (peak, demand charge and its shares, fixed charges, VAT; JSON, gateway/ledger/bill.py),
    # so `bill` for a closed month prints what its export carries.
    (
        """CREATE TABLE IF NOT EXISTS frozen_bills (
            period TEXT PRIMARY KEY, figures TEXT NOT NULL)""",
    ),
    # 6 -> 7: the card UID of a job started or stopped at a sensor's card reader, beside
    # its live_jobs row: a table of its own, as steps only add tables (see the reader below).
    (
        """CREATE TABLE IF NOT EXISTS live_job_cards (
            machine TEXT NOT NULL, job TEXT NOT NULL, card TEXT NOT NULL,
            PRIMARY KEY (machine, job)) WITHOUT ROWID""",
    ),
    # 7 -> 8: the people who may use the shop's web page (gateway/ledger/users.py); only
    # argon2id hashes, never a password.
    (
        """CREATE TABLE IF NOT EXISTS users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL, created_by TEXT NOT NULL)""",
    ),
    # 8 -> 9: billing. Customers and the shop's own product lines (`shopwatt customer`):
    # name_key is the display name case- and space-folded, so one customer is never two;
    # merged_into, a customer merged into another (its id still resolves, to the other).
    # Assignments (`shopwatt job assign`) are keyed by an instant inside the job, so they
    # follow the job that covers it through recomputes; splits are the instants where a
    # job becomes two. The row tables gain order, parts, scrap and price.
    (
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL,
            vat_id TEXT NOT NULL, price_list TEXT NOT NULL, internal INTEGER NOT NULL,
            merged_into TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX customers_by_name_key ON customers (name_key) WHERE merged_into = ''",
        """CREATE TABLE assignments (
            id INTEGER PRIMARY KEY AUTOINCREMENT, machine TEXT NOT NULL, at_ms INTEGER NOT NULL,
            job_id TEXT NOT NULL, customer TEXT NOT NULL, order_id TEXT NOT NULL,
            parts INTEGER NOT NULL, scrap INTEGER NOT NULL, made_at TEXT NOT NULL,
            made_by TEXT NOT NULL)""",
        "CREATE INDEX assignments_by_time ON assignments (machine, at_ms)",
        """CREATE TABLE splits (
            machine TEXT NOT NULL, at_ms INTEGER NOT NULL, job_id TEXT NOT NULL,
            made_at TEXT NOT NULL, made_by TEXT NOT NULL, PRIMARY KEY (machine, at_ms))""",
        *(
            f"ALTER TABLE {table} ADD COLUMN {column} {kind}"
            for table in ("rows", "adjustments", "frozen")
            for column, kind in BILLING_COLUMNS.items()
        ),
        # The parts a job event's stop said (a button's count; 0: not known).
        "ALTER TABLE explicit_jobs ADD COLUMN parts INTEGER NOT NULL DEFAULT 0",
        # A row's charges are keyed like the row, and a row's key has its order now.
        "ALTER TABLE frozen_charges ADD COLUMN order_id TEXT NOT NULL DEFAULT ''",
    ),
    # 9 -> 10: own solar on the rows of closed months (the export's solar_kwh, solar_cost),
    # beside frozen_charges (a table of its own: migrations may run again, ALTER may not).
    (
        """CREATE TABLE IF NOT EXISTS frozen_solar (
            period TEXT NOT NULL, kind TEXT NOT NULL, machine TEXT NOT NULL,
            job_id TEXT NOT NULL, customer TEXT NOT NULL, order_id TEXT NOT NULL,
            day TEXT NOT NULL, solar_wh INTEGER NOT NULL, solar_cents INTEGER NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS frozen_solar_by_period ON frozen_solar (period)",
    ),
    # 10 -> 11: members (`shopwatt member`, docs/members.md). hours: which hours of a job
    # count (run_hours or job_hours); weights: JSON {machine or '*': credits per hour, as
    # text}; low_below: the balance (credits, text) under which `status` warns. Blocks and
    # subscriptions keep hours as exact decimal text; a subscription runs from `first` to
    # `last` ('': until ended). prepaid_frozen: what `close` froze of the prepaid view.
    # IF NOT EXISTS: a ledger whose version was set back runs the step again.
    (
        """CREATE TABLE IF NOT EXISTS members (
            id TEXT PRIMARY KEY, card TEXT NOT NULL, hours TEXT NOT NULL,
            weights TEXT NOT NULL, low_below TEXT NOT NULL, made_at TEXT NOT NULL,
            made_by TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX IF NOT EXISTS members_by_card ON members (card) WHERE card != ''",
        """CREATE TABLE IF NOT EXISTS blocks (
            id INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL, hours TEXT NOT NULL,
            price_cents INTEGER NOT NULL, bought TEXT NOT NULL, valid_until TEXT NOT NULL,
            made_at TEXT NOT NULL, made_by TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS subscriptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL, hours TEXT NOT NULL,
            price_cents INTEGER NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL,
            carry INTEGER NOT NULL, cap TEXT NOT NULL, made_at TEXT NOT NULL,
            made_by TEXT NOT NULL)""",
        # The prepaid view of a closed month as `close` froze it (cents).
        """CREATE TABLE IF NOT EXISTS prepaid_frozen (
            period TEXT NOT NULL, member TEXT NOT NULL, opening INTEGER NOT NULL,
            received INTEGER NOT NULL, recognised INTEGER NOT NULL, closing INTEGER NOT NULL,
            PRIMARY KEY (period, member))""",
    ),
    # 11 -> 12: each machine's energy (float64 Wh) and state (int8) per quarter hour of a
    # local day, kept with its rows (ledger/quarters.py): the month page's demand peak and
    # state strips. An older ledger's days are kept when `shopwatt web` starts
    # (Ledger.keep_quarters); until then the page reads their readings.
    (
        """CREATE TABLE IF NOT EXISTS quarters (
            machine TEXT NOT NULL, day TEXT NOT NULL, wh BLOB NOT NULL, states BLOB NOT NULL,
            PRIMARY KEY (machine, day))""",
    ),
    # 12 -> 13: readings' blocks in rowid tables, found by an index. A WITHOUT ROWID table
    # keeps its rows in the key's b-tree, and a search compares whole rows: every lookup of
    # a machine's day read that day's compressed block (hundreds of KB late in the day) to
    # get at its key. Rewrites the blocks once. A reader of an older file skips it (only
    # the CREATE statements of a step run there, on empty temporary tables).
    (
        *_rowid_blocks(
            "chunks",
            "machine TEXT NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL, "
            "t_first INTEGER NOT NULL, t_last INTEGER NOT NULL, data BLOB NOT NULL",
            "machine, day",
        ),
        *_rowid_blocks(
            "parts",
            "machine TEXT NOT NULL, day INTEGER NOT NULL, level INTEGER NOT NULL, "
            "t_first INTEGER NOT NULL, n INTEGER NOT NULL, t_last INTEGER NOT NULL, "
            "data BLOB NOT NULL",
            "machine, day, level, t_first",
        ),
    ),
    # 13 -> 14: a live batch's readings as one block for all its machines (ledger/chunks.py):
    # a `segments` row per machine and batch wrote three times the pages. Older ledgers'
    # segments are read beside it until the next compaction moves them into parts.
    (
        """CREATE TABLE IF NOT EXISTS live_batches (
            id INTEGER PRIMARY KEY, parts INTEGER NOT NULL, t_first INTEGER NOT NULL,
            t_last INTEGER NOT NULL, data BLOB NOT NULL)""",
    ),
    # 14 -> 15: a machine's UTC day in chunks as rows of at most BLOCK_MAX readings
    # (ledger/chunks.py), so that reading a few minutes of it decodes one row, not the day:
    # the rows are keyed by their first time too. Older ledgers' day rows are read as they
    # are (a key of their first time is unique too). A reader of an older file has the old
    # index, and reads by (machine, day) alike.
    (
        "DROP INDEX IF EXISTS chunks_by_key",
        "CREATE UNIQUE INDEX chunks_by_key ON chunks (machine, day, t_first)",
    ),
)
SCHEMA_VERSION = 1 + len(_MIGRATIONS)
PAGE_SIZE = 1024


def connect(path: Path, *, create: bool = False, readonly: bool = False) -> sqlite3.Connection:
    """Open the ledger (creating it when asked); refuses a file from a newer shopwatt.

    `readonly`: for commands that only read (export, status): they never write, so they
    also work on an accountant's read-only copy.
    """
    if not create and not path.exists():
        raise LedgerError(f"{path}: no ledger yet; run `shopwatt replay` first")
    try:
        conn = _connect_readonly(path) if readonly else _connect(path)
    except (OSError, sqlite3.OperationalError) as err:
        raise LedgerError(f"{path}: cannot open the ledger: {err}") from None
    conn.row_factory = sqlite3.Row
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and create:
            # Small pages: a live batch changes a few rows in several tables, and every page
            # it touches is written whole (twice: the WAL, then the checkpoint). Only a new,
            # empty file takes it; an older ledger keeps its 4 KiB pages.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            # One script, one transaction: a half-created ledger never exists.
            steps = _DDL + "".join(f"{s};" for step in _MIGRATIONS for s in step)
            conn.executescript(f"BEGIN; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version == 0:
            # Empty: being created by another process right now, or never finished.
            raise LedgerError(f"{path}: no ledger yet; run `shopwatt replay` first")
        elif version < SCHEMA_VERSION and readonly and _writable(path):
            # An older ledger where it can be written (shopwatt was updated): upgrade it as
            # a command that writes would, then read it; else export fails after an update.
            conn.close()
            connect(path).close()
            return connect(path, readonly=True)
        elif version < SCHEMA_VERSION and readonly:
            # A reader must not upgrade the file (it may be an accountant's read-only copy).
            # The steps it lacks only add tables, which an older shopwatt never filled: the
            # reader sees them as empty temporary tables (its own, gone when it closes).
            # A column the file lacks reads as its default (rows.py); an index only speeds
            # up reads (of the file's tables: it cannot be added; of empty ones: not needed).
            for step in _MIGRATIONS[version - 1 :]:
                for statement in step:
                    if statement.startswith("CREATE TABLE"):
                        conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
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


def _writable(path: Path) -> bool:
    """The file and its folder (SQLite's -wal and -shm) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect(path: Path) -> sqlite3.Connection:
    if path.exists() and not os.access(path, os.W_OK):
        # SQLite would open it read-only without a word and fail at the first write.
        raise LedgerError(
            f"{path}: the ledger is read-only; only export and status can use this copy"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are explicit (see transaction()), one per operation.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        # A Pi's SD card: in WAL mode NORMAL syncs at checkpoints, not at every commit; a
        # power cut can lose the last operation, never corrupt the ledger (set before the
        # first write).
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """mode=ro; where SQLite cannot even create the WAL index (a read-only folder): immutable."""
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
    try:
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise  # not a read-only medium: the caller reports what SQLite said
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # immutable would ignore the -wal file and show the ledger without its last changes.
        raise LedgerError(
            f"{path}: read-only, and {wal.name} holds changes not yet in the file; open the "
            "ledger once where it can be written (any shopwatt command), then copy it"
        )
    # Nothing can change a file on a read-only medium, and without a -wal the main file is
    # the whole ledger: SQLite may skip locking and the WAL index.
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def _migrate(conn: sqlite3.Connection) -> None:
    """Run the steps from the file's version to ours, in one transaction."""
    with transaction(conn):
        # Read again under the write lock: another process may have just upgraded the file.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in _MIGRATIONS[version - 1 :]:
            for statement in step:
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
