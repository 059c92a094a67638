"""The durable outbox: every line goes to SQLite (WAL) first, and leaves only once settled.

A line leaves the outbox in exactly one of three ways, each counted in a persistent
counter: InfluxDB acknowledged it (`delivered`), InfluxDB rejected it as bad data
(`dead_lettered`: kept in the `dead_letter` table for inspection), or the size bound
pushed it out (`dropped`). Nothing else deletes a line, so a crash, a kill or a network
outage can only delay lines (and re-send some, which InfluxDB overwrites), never lose them.

Size bound policy: when the queued lines exceed `max_bytes`, the OLDEST lines are dropped
until the queue is back to 90 % of the bound, as Telegraf's metric buffer does. Newest
data is what the live dashboards need after an outage, and the ledger, not InfluxDB,
keeps the accounting record (jobs and costs can be written again from it). While the
queue is within 10 % of its bound `full` is True, and every drop is logged.

SD-card wear: every commit costs whole pages and an fsync, whatever it holds, so the
outbox commits once per put(). Acknowledged lines that are the oldest in the queue are
only marked (in memory) and deleted by one statement in the next put's transaction (or at
close): a crash before then re-sends them, which InfluxDB overwrites.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.clock import now_ms
from gateway.counted import counted
from gateway.errors import ShopwattError
from gateway.outputs.lineprotocol import FieldValue

log = logging.getLogger("shopwatt.outbox")

# Drop down to this share of the bound, so a full outbox drops in chunks, not per put.
LOW_WATER = 0.9
DEAD_LETTER_KEEP = 10_000  # newest rejected lines kept for inspection; all are counted
_LOG_EVERY_MS = 60_000

_SCHEMA = """
-- AUTOINCREMENT: ids are never reused, even after the queue was empty, so an
-- acknowledgement for ids a drainer sent earlier can never delete newer lines.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,       -- when it was put (UTC ms): the age in health
    line BLOB NOT NULL            -- one line of line protocol, UTF-8
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,      -- HTTP status InfluxDB answered for this line alone
    reason TEXT NOT NULL,         -- InfluxDB's message
    line BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES ('put', 0), ('delivered', 0), ('dropped', 0),
    ('dead_lettered', 0);
"""


class OutboxError(ShopwattError):
    """The outbox file cannot be opened or written (path, permissions, disk full)."""


@dataclass(frozen=True, slots=True)
class DeadLine:
    """A line InfluxDB rejected on its own: it leaves the queue for the dead-letter table."""

    id: int
    line: bytes
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """What the health metrics report about the outbox."""

    depth: int  # lines waiting
    bytes: int  # their size in line protocol (UTF-8)
    max_bytes: int
    oldest_age_s: float  # age of the oldest waiting line; 0 when empty
    full: bool  # within 10 % of the bound: lines are being (or about to be) dropped
    put: int  # lines ever accepted: put = delivered + dead_lettered + dropped + depth
    delivered: int
    dead_lettered: int
    dropped: int

    def fields(self) -> dict[str, FieldValue]:
        """The `gateway` measurement fields (outbox_*)."""
        return {
            "outbox_depth": self.depth,
            "outbox_bytes": self.bytes,
            "outbox_age_s": self.oldest_age_s,
            "outbox_full": self.full,
            "outbox_delivered": self.delivered,
            "outbox_dead_lettered": self.dead_lettered,
            "outbox_dropped": self.dropped,
        }


class Outbox:
    """A bounded, durable FIFO of line-protocol lines in one SQLite file; thread-safe."""

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = 512 * 1024 * 1024,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._queued = threading.Event()
        self._last_drop_log_ms = -_LOG_EVERY_MS
        self._drops_unlogged = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Small pages (a new file only): every put and every settle rewrites the queue's
            # last pages whole, and each byte of those is SD-card wear.
            self._db.execute("PRAGMA page_size=1024")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            # Debian builds SQLite with secure_delete on: it would zero (and so write) every
            # page the delivered lines leave, and they are no secret once in InfluxDB.
            self._db.execute("PRAGMA secure_delete=OFF")
            self._db.executescript(_SCHEMA)
            count, nbytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(line)), 0) FROM outbox"
            ).fetchone()
        except (sqlite3.Error, OSError) as err:
            raise OutboxError(f"{self.path}: cannot open the outbox: {err}") from None
        self._count: int = count
        self._bytes: int = nbytes
        # Every line with id <= _acked_to is acknowledged; _unsaved of them are still in the
        # file (their delete and `delivered` count ride in the next commit).
        self._acked_to = 0
        self._unsaved = 0
        if count:
            self._queued.set()

    # -- writing ------------------------------------------------------------------------
    def put(self, lines: Iterable[str]) -> int:
        """Append lines in one durable transaction (fsynced); returns how many.

        Every call is one fsync: put a batch (say, a second of readings), not one line.
        """
        data = [text.encode() for text in lines]
        if not data:
            return 0
        size = sum(map(len, data))
        with self._lock:
            at = self._clock_ms()
            # synchronous=FULL: once put() returns, the lines survive a power cut.
            with self._transaction("FULL"):
                self._delete_acknowledged()
                self._db.executemany(
                    "INSERT INTO outbox (at_ms, line) VALUES (?, ?)", ((at, d) for d in data)
                )
                self._bump("put", len(data))
                count, nbytes = self._count + len(data), self._bytes + size
                if nbytes > self.max_bytes:
                    count, nbytes = self._drop_oldest(count, nbytes, at)
            self._count, self._bytes, self._unsaved = count, nbytes, 0
            self._queued.set()
        return len(data)

    def _drop_oldest(self, count: int, nbytes: int, now_ms: int) -> tuple[int, int]:
        """Delete the oldest lines down to LOW_WATER of the bound (inside put's transaction)."""
        target = nbytes - int(self.max_bytes * LOW_WATER)
        freed = dropped = 0
        cut_id: int | None = None
        oldest_ms = now_ms
        rows = self._db.execute(
            "SELECT id, at_ms, LENGTH(line) FROM outbox WHERE id > ? ORDER BY id", (self._acked_to,)
        )
        for row_id, at_ms, size in rows:
            oldest_ms = min(oldest_ms, at_ms)
            cut_id = row_id
            freed += size
            dropped += 1
            if freed >= target:
                break
        rows.close()
        self._db.execute("DELETE FROM outbox WHERE id <= ?", (cut_id,))
        self._bump("dropped", dropped)
        self._drops_unlogged += dropped
        if now_ms - self._last_drop_log_ms >= _LOG_EVERY_MS:
            log.warning(
                "outbox %s is full (%d bytes, bound %d): dropped the %s, "
                "the oldest queued %.0f s ago; is InfluxDB reachable?",
                self.path,
                nbytes,
                self.max_bytes,
                counted(self._drops_unlogged, "oldest line"),
                (now_ms - oldest_ms) / 1000.0,
            )
            self._last_drop_log_ms, self._drops_unlogged = now_ms, 0
        return count - dropped, nbytes - freed

    # -- draining -----------------------------------------------------------------------
    def peek(self, max_lines: int, after_id: int = 0) -> list[tuple[int, bytes]]:
        """The oldest lines (id, line) with id > after_id; they stay until settle()."""
        with self._lock:
            rows: list[tuple[int, bytes]] = self._db.execute(
                "SELECT id, line FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (max(after_id, self._acked_to), max_lines),
            ).fetchall()
            if not rows:
                self._queued.clear()
            return rows

    def wait(self, timeout_s: float) -> bool:
        """Block until lines are queued (or timeout_s passes); True if there are some."""
        return self._queued.wait(timeout_s)

    def settle(self, acked: Sequence[tuple[int, int]], dead: Sequence[DeadLine] = ()) -> None:
        """Remove acknowledged id ranges (inclusive) and move rejected lines to dead_letter.

        Ranges that settle the oldest lines (the usual case) are only marked here and
        deleted with the next put; others (after a failed pass) and rejected lines commit now.
        """
        if not acked and not dead:
            return
        with self._lock:
            if not dead and self._mark_acknowledged(acked):
                return
            count, nbytes = self._count, self._bytes
            # synchronous=NORMAL: losing this commit to a power cut only re-sends lines,
            # which InfluxDB overwrites, and an fsync per batch is slow on an SD card.
            with self._transaction("NORMAL"):
                self._delete_acknowledged()
                delivered = 0
                for lo, hi in acked:
                    n, size = self._delete(lo, hi)
                    delivered += n
                    count, nbytes = count - n, nbytes - size
                self._bump("delivered", delivered)
                rejected = 0
                for d in dead:
                    n, size = self._delete(d.id, d.id)
                    rejected += n
                    count, nbytes = count - n, nbytes - size
                if dead:
                    now = self._clock_ms()
                    self._db.executemany(
                        "INSERT INTO dead_letter (at_ms, status, reason, line) VALUES (?,?,?,?)",
                        [(now, d.status, d.reason[:1000], d.line) for d in dead],
                    )
                    self._db.execute(
                        "DELETE FROM dead_letter WHERE id <= (SELECT MAX(id) FROM dead_letter) - ?",
                        (DEAD_LETTER_KEEP,),
                    )
                self._bump("dead_lettered", rejected)
            self._count, self._bytes, self._unsaved = count, nbytes, 0

    def _mark_acknowledged(self, acked: Sequence[tuple[int, int]]) -> bool:
        """Mark the ranges acknowledged if they hold every queued line up to their end."""
        end = max(hi for _, hi in acked)
        sizes = [self._size(max(lo, self._acked_to + 1), hi) for lo, hi in acked]
        n, size = sum(s[0] for s in sizes), sum(s[1] for s in sizes)
        if n != self._size(self._acked_to + 1, end)[0]:
            return False  # a gap of unsent lines: delete these ranges one by one now
        if n:
            self._acked_to = max(self._acked_to, end)
            self._unsaved += n
            self._count, self._bytes = self._count - n, self._bytes - size
        return True

    def _delete_acknowledged(self) -> None:
        """Delete the lines marked acknowledged (inside the caller's transaction)."""
        if self._unsaved:
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (self._acked_to,))
            self._bump("delivered", self._unsaved)

    def _size(self, lo: int, hi: int) -> tuple[int, int]:
        """How many queued lines have an id in lo..hi, and their bytes."""
        n, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(line)), 0) FROM outbox"
            " WHERE id BETWEEN ? AND ? AND id > ?",
            (lo, hi, self._acked_to),
        ).fetchone()
        return int(n), int(size)

    def _delete(self, lo: int, hi: int) -> tuple[int, int]:
        n, size = self._size(lo, hi)
        self._db.execute(
            "DELETE FROM outbox WHERE id BETWEEN ? AND ? AND id > ?", (lo, hi, self._acked_to)
        )
        return n, size

    # -- inspection ---------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Lines waiting (cheap: kept in memory)."""
        return self._count

    def health(self) -> OutboxHealth:
        """Depth, size, age of the oldest line and the lifetime counters."""
        with self._lock:
            # The first id is the oldest put (ids only grow): an index lookup, not a scan.
            first = self._db.execute(
                "SELECT at_ms FROM outbox WHERE id > ? ORDER BY id LIMIT 1", (self._acked_to,)
            ).fetchone()
            oldest = first[0] if first else None
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            now = self._clock_ms()
            return OutboxHealth(
                depth=self._count,
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                oldest_age_s=max(0.0, (now - oldest) / 1000.0) if oldest is not None else 0.0,
                full=self._bytes >= self.max_bytes * LOW_WATER,
                put=counters["put"],
                delivered=counters["delivered"] + self._unsaved,
                dead_lettered=counters["dead_lettered"],
                dropped=counters["dropped"],
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLine]:
        """The newest rejected lines (id = dead-letter id), newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, line, status, reason FROM dead_letter ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLine(*row) for row in rows]

    def close(self) -> None:
        """Delete what is acknowledged, then close the file (a WAL checkpoint folds the log in)."""
        with self._lock:
            try:
                if self._unsaved:
                    with self._transaction("NORMAL"):
                        self._delete_acknowledged()
                    self._unsaved = 0
            finally:
                self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------
    def _bump(self, name: str, n: int) -> None:
        if n:
            self._db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (n, name))

    @contextmanager
    def _transaction(self, synchronous: str) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT with the given durability; ROLLBACK on any error."""
        try:
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise OutboxError(f"{self.path}: cannot write the outbox: {err}") from None
