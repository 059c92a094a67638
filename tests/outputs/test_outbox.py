"""The outbox: durable across restarts and kills, bounded, and every line accounted for."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from gateway.outputs.outbox import DeadLine, Outbox, OutboxError, waiting

ROOT = Path(__file__).resolve().parents[2]


def _lines(first: int, n: int) -> list[str]:
    return [f"p,site=s v={i}i {i}" for i in range(first, first + n)]


def _accounted(box: Outbox) -> bool:
    h = box.health()
    return h.put == h.delivered + h.dead_lettered + h.dropped + h.depth


def test_lines_come_out_in_order_and_survive_reopening(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put(_lines(0, 3))
        box.put(_lines(3, 2))
    with Outbox(tmp_path / "o.db") as box:
        assert [line for _, line in box.peek(10)] == [s.encode() for s in _lines(0, 5)]
        assert box.depth == 5 and box.health().bytes == sum(len(s) for s in _lines(0, 5))


def test_only_settled_lines_leave_and_counters_persist(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put(_lines(0, 10))
        items = box.peek(4)
        box.settle([(items[0][0], items[2][0])], [DeadLine(items[3][0], items[3][1], 400, "bad")])
        assert [line for _, line in box.peek(100)] == [s.encode() for s in _lines(4, 6)]
    with Outbox(tmp_path / "o.db") as box:
        h = box.health()
        assert (h.put, h.delivered, h.dead_lettered, h.dropped, h.depth) == (10, 3, 1, 0, 6)
        assert box.dead_letters() == [DeadLine(1, _lines(3, 1)[0].encode(), 400, "bad")]


def test_an_old_acknowledgement_never_deletes_newer_lines(tmp_path: Path) -> None:
    # The queue empties, then fills again: ids must not restart, or a late settle() for
    # the first batch would delete lines that were never sent.
    with Outbox(tmp_path / "o.db") as box:
        box.put(_lines(0, 5))
        first = box.peek(5)
        box.settle([(first[0][0], first[-1][0])])
        box.put(_lines(5, 5))
        box.settle([(first[0][0], first[-1][0])])  # the same acknowledgement, again
        assert box.depth == 5 and _accounted(box)


def test_settling_the_oldest_lines_rides_in_the_next_put(tmp_path: Path) -> None:
    # SD-card wear: one commit per batch. Delivered lines leave with the next put.
    path = tmp_path / "o.db"
    with Outbox(path) as box, sqlite3.connect(path) as other:
        box.put(_lines(0, 5))
        sent = box.peek(5)
        seen = other.execute("PRAGMA data_version").fetchone()
        box.settle([(sent[0][0], sent[-1][0])])
        assert other.execute("PRAGMA data_version").fetchone() == seen  # nothing committed
        assert box.peek(10) == [] and box.depth == 0 and _accounted(box)
        assert box.health().delivered == 5
        box.put(_lines(5, 2))
        assert waiting(path) == 2
        assert other.execute("SELECT value FROM counters WHERE name = 'delivered'").fetchone() == (
            5,
        )


def test_a_crash_before_the_next_put_sends_the_acknowledged_lines_again(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path)
    box.put(_lines(0, 5))
    sent = box.peek(5)
    box.settle([(sent[0][0], sent[2][0])])
    box._db.close()  # as a kill would: no close(), nothing more committed
    with Outbox(path) as box:
        assert [line for _, line in box.peek(10)] == [s.encode() for s in _lines(0, 5)]
        assert box.health().delivered == 0 and _accounted(box)


def test_full_outbox_drops_the_oldest_lines_counts_and_logs_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(_lines(1000, 1)[0])  # every line below has the same size
    with Outbox(tmp_path / "o.db", max_bytes=100 * size) as box:
        box.put(_lines(1000, 95))
        assert box.health().full and box.health().dropped == 0
        with caplog.at_level(logging.WARNING, logger="shopwatt.outbox"):
            for first in range(1095, 1200, 5):
                box.put(_lines(first, 5))
        h = box.health()
        kept = [int(line.split()[-1]) for _, line in box.peek(1000)]
        assert kept == list(range(1200 - h.depth, 1200))  # the newest, in order
        assert h.depth <= 100 and h.bytes <= h.max_bytes
        assert h.dropped == 200 - h.depth and _accounted(box)
        assert "is full" in caplog.text and "dropped the" in caplog.text


def test_oldest_age_is_reported(tmp_path: Path) -> None:
    now = [1_000_000]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: now[0]) as box:
        assert box.health().oldest_age_s == 0.0
        box.put(_lines(0, 1))
        now[0] += 90_000
        box.put(_lines(1, 1))
        assert box.health().oldest_age_s == 90.0
        assert box.health().fields()["outbox_age_s"] == 90.0


def test_an_unusable_path_is_reported_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(OutboxError, match=r"dir\.db: cannot open the outbox"):
        Outbox(tmp_path / "dir.db")


_WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from gateway.outputs.outbox import Outbox
box = Outbox(sys.argv[1])
batch = 0
while True:
    box.put([f"p,batch={batch} v={i}i {i}" for i in range(200)])
    print(batch, flush=True)
    batch += 1
"""


def test_a_process_killed_while_writing_loses_no_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    confirmed = [int(child.stdout.readline()) for _ in range(30)]
    os.kill(child.pid, signal.SIGKILL)  # mid-stream: likely inside a put()
    child.wait()
    with Outbox(path) as box:
        lines = [line.decode() for _, line in box.peek(1_000_000)]
        assert box.depth == len(lines)
    batches: dict[int, int] = {}
    for text in lines:
        n = int(text.split(",")[1].split(" ")[0].removeprefix("batch="))
        batches[n] = batches.get(n, 0) + 1
    assert set(confirmed) <= set(batches)  # every batch put() returned for is there
    assert sorted(batches) == list(range(len(batches)))  # in order, no hole
    assert set(batches.values()) == {200}  # and no batch is there in part


def _power_batch(k: int) -> list[str]:
    """A batch of `shopwatt run`: two seconds of 50 sensors' `power` points."""
    return [
        f"power,machine=m{s:03d},sensor=s{s:03d},site=test-shop "
        f"watts={9 * ((7 * s + 13 * t) % 400)}.0,wh={1000 * s + 0.37 * t:.4f} "
        f"{1_700_000_000_000 + 1000 * t}"
        for t in (2 * k, 2 * k + 1)
        for s in range(50)
    ]


def test_a_batch_writes_fewer_bytes_to_disk_than_its_lines_hold(tmp_path: Path) -> None:
    # SD-card wear (docs/deploy.md): a put's lines are one compressed row, so the pages a
    # batch writes to the WAL are fewer than the line protocol it holds.
    path = tmp_path / "o.db"
    wal = tmp_path / "o.db-wal"
    with Outbox(path) as box:
        for k in range(20):
            lines = _power_batch(k)
            before = wal.stat().st_size if wal.exists() else 0
            box.put(lines)
            sent = box.peek(1000)
            box.settle([(sent[0][0], sent[-1][0])])
            written = wal.stat().st_size - before
        assert written < sum(len(line) for line in lines)
        assert _accounted(box) and box.health().delivered == 2000


# The outbox of shopwatt before compressed rows: a row per line.
_LINE_TABLE = """
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
    line BLOB NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters VALUES ('put', 3000), ('delivered', 1990), ('dropped', 0),
    ('dead_lettered', 1);
"""


def test_an_outbox_of_the_version_before_is_drained_with_its_ids(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    old = [(k, 1_000 + k, line.encode()) for k, line in enumerate(_lines(0, 1010), 1991)]
    del old[5]  # a dead-lettered line left a hole
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_LINE_TABLE)
        conn.executemany("INSERT INTO outbox VALUES (?, ?, ?)", old)
        conn.commit()
    now = [old[0][1] + 60_000]
    with Outbox(path, clock_ms=lambda: now[0]) as box:
        assert box.peek(2000) == [(k, line) for k, _, line in old]
        h = box.health()
        assert (h.depth, h.put, h.oldest_age_s) == (1009, 3000, 60.0) and _accounted(box)
        box.put(_lines(5000, 2))
        assert [k for k, _ in box.peek(2000)[-3:]] == [3000, 3001, 3002]
    assert waiting(path) == 1011
