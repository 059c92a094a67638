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
outbox commits once per put(), and a put's lines are one zstd-compressed row of the
`queue` table (line protocol shrinks about 7x; a row per line wrote every byte whole).
Lines keep ids of their own (a row holds the ids first_id .. first_id + n - 1); settling
part of a row writes the rest of it back as a row of its own. Acknowledged lines that are
the oldest in the queue are only marked (in memory) and deleted in the next put's
transaction (or at close): a crash before then re-sends them, which InfluxDB overwrites.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import zstandard

from gateway.clock import now_ms
from gateway.counted import counted
from gateway.errors import ShopwattError
from gateway.outputs.lineprotocol import FieldValue

log = logging.getLogger("shopwatt.outbox")

# Drop down to this share of the bound, so a full outbox drops in chunks, not per put.
LOW_WATER = 0.9
DEAD_LETTER_KEEP = 10_000  # newest rejected lines kept for inspection; all are counted
# Lines per row at most: a drainer's peek decompresses whole rows, so a huge put (a
# `shopwatt publish` of a year) must not become one row read again for every batch sent.
ROW_LINES = 1024
_LOG_EVERY_MS = 60_000

_SCHEMA = """
-- One row per put (ROW_LINES lines at most). Ids are never reused, even after the queue
-- was empty (they continue the `put` counter), so an acknowledgement for ids a drainer
-- sent earlier can never delete newer lines.
CREATE TABLE IF NOT EXISTS queue (
    first_id INTEGER PRIMARY KEY, -- its lines' ids: first_id .. first_id + n - 1
    n INTEGER NOT NULL,
    size INTEGER NOT NULL,        -- bytes of its lines in line protocol (UTF-8)
    at_ms INTEGER NOT NULL,       -- when it was put (UTC ms): the age in health
    lines BLOB NOT NULL           -- the lines joined by newlines, zstd-compressed
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
# {} of the rows holding ids in ?..?, oldest first: the row that holds the first id (or
# the row before it) and every row that starts inside. first_id is the rowid: no scan.
_OVERLAPPING = """SELECT {} FROM queue WHERE first_id BETWEEN
    COALESCE((SELECT MAX(first_id) FROM queue WHERE first_id <= ?1), 0) AND ?2
    ORDER BY first_id"""
_NO_END = 2**63 - 1


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
        # Used under self._lock only: zstandard's contexts are not thread-safe.
        self._compress = zstandard.ZstdCompressor(level=1).compress
        self._decompress = zstandard.ZstdDecompressor().decompress
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
            self._adopt_line_table()
            count, nbytes, last = self._db.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(size), 0),"
                " COALESCE(MAX(first_id + n - 1), 0) FROM queue"
            ).fetchone()
            (put,) = self._db.execute("SELECT value FROM counters WHERE name = 'put'").fetchone()
        except (sqlite3.Error, OSError) as err:
            raise OutboxError(f"{self.path}: cannot open the outbox: {err}") from None
        self._count: int = count
        self._bytes: int = nbytes
        # A line's id is the `put` count when it came in; `last` covers a file whose ids an
        # older shopwatt gave (AUTOINCREMENT, which only ever ran alongside the counter).
        self._next_id: int = max(put, last) + 1
        # Every line with id <= _acked_to is acknowledged; _unsaved of them are still in the
        # file (their delete and `delivered` count ride in the next commit).
        self._acked_to = 0
        self._unsaved = 0
        if count:
            self._queued.set()

    def _adopt_line_table(self) -> None:
        """Move the lines of an older shopwatt's `outbox` table (a row per line) into the
        queue, ids and times kept, then drop that table: once, in one transaction."""
        if not self._db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'outbox'").fetchone():
            return
        with self._transaction("FULL"):
            run: list[bytes] = []
            first = at = 0
            for row_id, at_ms, line in self._db.execute(
                "SELECT id, at_ms, line FROM outbox ORDER BY id"
            ):
                if run and (row_id != first + len(run) or len(run) == ROW_LINES):
                    self._insert(first, at, run)
                    run = []
                if not run:
                    first, at = row_id, at_ms
                run.append(bytes(line))
            if run:
                self._insert(first, at, run)
            self._db.execute("DROP TABLE outbox")

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
                self._insert(self._next_id, at, data)
                self._bump("put", len(data))
                count, nbytes = self._count + len(data), self._bytes + size
                if nbytes > self.max_bytes:
                    count, nbytes = self._drop_oldest(count, nbytes, at)
            self._next_id += len(data)
            self._count, self._bytes, self._unsaved = count, nbytes, 0
            self._queued.set()
        return len(data)

    def _insert(self, first_id: int, at_ms: int, lines: list[bytes]) -> None:
        """Store lines with ids from first_id on, ROW_LINES to a row."""
        for k in range(0, len(lines), ROW_LINES):
            part = lines[k : k + ROW_LINES]
            self._db.execute(
                "INSERT INTO queue (first_id, n, size, at_ms, lines) VALUES (?, ?, ?, ?, ?)",
                (
                    first_id + k,
                    len(part),
                    sum(map(len, part)),
                    at_ms,
                    self._compress(b"\n".join(part)),
                ),
            )

    def _drop_oldest(self, count: int, nbytes: int, now_ms: int) -> tuple[int, int]:
        """Delete the oldest lines down to LOW_WATER of the bound (inside put's transaction)."""
        target = nbytes - int(self.max_bytes * LOW_WATER)
        freed = 0
        cut_id = self._acked_to
        oldest_ms = now_ms
        rows = self._db.execute(
            _OVERLAPPING.format("first_id, n, size, at_ms, lines"), (cut_id + 1, _NO_END)
        )
        for first_id, n, size, at_ms, blob in rows:
            oldest_ms = min(oldest_ms, at_ms)
            if first_id > cut_id and freed + size < target:  # the whole row goes
                cut_id, freed = first_id + n - 1, freed + size
                continue
            for row_id, line in self._numbered(first_id, blob, cut_id + 1):
                cut_id, freed = row_id, freed + len(line)
                if freed >= target:
                    break
            break
        rows.close()
        dropped, freed = self._delete(self._acked_to + 1, cut_id)
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
            start = max(after_id, self._acked_to) + 1
            found: list[tuple[int, bytes]] = []
            rows = self._db.execute(_OVERLAPPING.format("first_id, lines"), (start, _NO_END))
            for first_id, blob in rows:
                found += self._numbered(first_id, blob, start)[: max_lines - len(found)]
                if len(found) >= max_lines:
                    break
            rows.close()
            if not found:
                self._queued.clear()
            return found

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
        sizes = [self._size(lo, hi) for lo, hi in acked]
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
            self._cut(0, self._acked_to)
            self._bump("delivered", self._unsaved)

    def _size(self, lo: int, hi: int) -> tuple[int, int]:
        """How many queued lines have an id in lo..hi, and their bytes."""
        lo = max(lo, self._acked_to + 1)
        n = size = 0
        for first_id, row_n, row_size, part in self._overlapping(lo, hi):
            if part is None:
                n, size = n + row_n, size + row_size
                continue
            inside = part[1][max(lo - first_id, 0) : hi + 1 - first_id]
            n, size = n + len(inside), size + sum(map(len, inside))
        return n, size

    def _delete(self, lo: int, hi: int) -> tuple[int, int]:
        """Delete the queued lines with an id in lo..hi: how many, and their bytes."""
        return self._cut(max(lo, self._acked_to + 1), hi)

    def _cut(self, lo: int, hi: int) -> tuple[int, int]:
        """Delete the lines with an id in lo..hi, acknowledged or not; a row partly inside
        is written back without them. How many went, and their bytes."""
        n = size = 0
        for first_id, row_n, row_size, part in self._overlapping(lo, hi):
            self._db.execute("DELETE FROM queue WHERE first_id = ?", (first_id,))
            if part is None:
                n, size = n + row_n, size + row_size
                continue
            at_ms, lines = part
            a, b = max(lo - first_id, 0), hi + 1 - first_id
            n, size = n + len(lines[a:b]), size + sum(map(len, lines[a:b]))
            if a:
                self._insert(first_id, at_ms, lines[:a])
            if b < len(lines):
                self._insert(first_id + b, at_ms, lines[b:])
        return n, size

    def _overlapping(
        self, lo: int, hi: int
    ) -> list[tuple[int, int, int, tuple[int, list[bytes]] | None]]:
        """The rows holding ids in lo..hi: first_id, n, size, and for a row only partly
        inside, its time and lines (None: wholly inside)."""
        if lo > hi:
            return []
        found: list[tuple[int, int, int, tuple[int, list[bytes]] | None]] = []
        rows = self._db.execute(_OVERLAPPING.format("first_id, n, size"), (lo, hi)).fetchall()
        for first_id, n, size in rows:
            if first_id + n - 1 < lo:
                continue  # the row before lo, ending before it
            if lo <= first_id and first_id + n - 1 <= hi:
                found.append((first_id, n, size, None))
                continue
            at_ms, blob = self._db.execute(
                "SELECT at_ms, lines FROM queue WHERE first_id = ?", (first_id,)
            ).fetchone()
            found.append((first_id, n, size, (at_ms, self._lines(blob))))
        return found

    def _lines(self, blob: bytes) -> list[bytes]:
        lines: list[bytes] = self._decompress(blob).split(b"\n")
        return lines

    def _numbered(self, first_id: int, blob: bytes, start: int) -> list[tuple[int, bytes]]:
        """A row's lines with their ids, from id `start` on."""
        skip = max(start - first_id, 0)
        return list(enumerate(self._lines(blob)[skip:], first_id + skip))

    # -- inspection ---------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Lines waiting (cheap: kept in memory)."""
        return self._count

    def health(self) -> OutboxHealth:
        """Depth, size, age of the oldest line and the lifetime counters."""
        with self._lock:
            # Rows in id order are in put order; only the few acknowledged rows are skipped.
            first = self._db.execute(
                "SELECT at_ms FROM queue WHERE first_id + n - 1 > ? ORDER BY first_id LIMIT 1",
                (self._acked_to,),
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


def waiting(path: Path) -> int:
    """Lines in an outbox file, read without writing to it (acknowledged lines not yet
    deleted count too)."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
        if "queue" not in tables:  # a file the running shopwatt has not opened since its update
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        return int(conn.execute("SELECT COALESCE(SUM(n), 0) FROM queue").fetchone()[0])
