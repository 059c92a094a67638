"""Draining the outbox into InfluxDB: nothing lost, nothing doubled, bad lines set aside."""

from __future__ import annotations

import random
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config import InfluxDB, parse_config
from gateway.outputs.drain import Drainer, open_influx_output
from gateway.outputs.influxdb import NO_ANSWER, HttpWriter
from gateway.outputs.outbox import Outbox
from tests.servers import HttpRequest, HttpResponse, Influxd, ServerPool, free_port

T0 = 1_700_000_000_000
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop.toml"


def _points(first: int, n: int) -> list[str]:
    """Points numbered first..first+n-1: v = the number, one per millisecond."""
    return [f"power,site=s,machine=m{i % 3} v={i}i {T0 + i}" for i in range(first, first + n)]


def _v1(url: str, db: str) -> HttpWriter:
    return HttpWriter(InfluxDB(url=url, database=db))


def _count_sum(influxd: Influxd, db: str) -> tuple[int, int]:
    rows = influxd.rows("SELECT count(v), sum(v) FROM power", db)
    return (rows[0]["count"], rows[0]["sum"]) if rows else (0, 0)


def _drain_all(drainer: Drainer, max_rounds: int = 1000) -> list[float]:
    """drain_once until the outbox is empty; the waits it asked for (never slept).

    The last call finds nothing new to send and deletes the last acknowledged batch.
    """
    waits: list[float] = []
    for _ in range(max_rounds):
        if not drainer.outbox.depth:
            return waits
        waits.append(drainer.drain_once())
    raise AssertionError(f"outbox not empty after {max_rounds} rounds")


def _wait_until(cond: Callable[[], bool], what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_points_put_in_the_outbox_are_queryable(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put(_points(0, 12_000))
        drainer = Drainer(box, _v1(influxd.url, influx_db))
        assert not any(_drain_all(drainer))
        assert drainer.stats.requests == 3  # 5000 + 5000 + 2000
        assert _count_sum(influxd, influx_db) == (12_000, sum(range(12_000)))
        assert box.health().delivered == 12_000


def test_the_configured_output_drains_on_its_own_thread(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    with EXAMPLE.open("rb") as fh:
        data = tomllib.load(fh)
    data["storage"] = {"path": "data"}
    data["influxdb"] = {"url": influxd.url, "database": influx_db, "batch_lines": 1000}
    outbox, drainer = open_influx_output(parse_config(data, tmp_path / "shop.toml"))
    assert outbox.path == tmp_path / "data" / "outbox.db"
    drainer.start()
    try:
        for first in range(0, 5000, 500):  # puts while the thread drains
            outbox.put(_points(first, 500))
        _wait_until(lambda: outbox.depth == 0, "the outbox to drain")
    finally:
        drainer.stop()
        outbox.close()
    assert _count_sum(influxd, influx_db) == (5000, sum(range(5000)))


def test_v2_writer_through_the_1_8_style_front(
    tmp_path: Path, servers: ServerPool, influxd: Influxd, influx_db: str
) -> None:
    front = servers.v2_front(influxd)
    with Outbox(tmp_path / "o.db") as box:
        box.put(_points(0, 7000))
        writer = HttpWriter(
            InfluxDB(url=front.url, api="v2", bucket=f"{influx_db}/autogen", org="shop")
        )
        _drain_all(Drainer(box, writer))
        writer.close()
    assert _count_sum(influxd, influx_db) == (7000, sum(range(7000)))
    assert {r.query["precision"] for r in front.requests} == {"ms"}


def test_influxd_killed_mid_drain_loses_and_doubles_nothing(
    tmp_path: Path, servers: ServerPool
) -> None:
    influxd = servers.influxd()
    db = influxd.create_database("faults")
    with Outbox(tmp_path / "o.db") as box:
        drainer = Drainer(box, _v1(influxd.url, db), backoff_initial_s=0.05, backoff_max_s=0.2)
        drainer.start()
        try:
            box.put(_points(0, 60_000))
            _wait_until(lambda: box.health().delivered > 0, "a first delivered batch")
            influxd.kill()  # mid-drain: the rest of the backlog is still queued
            assert box.depth > 0
            box.put(_points(60_000, 20_000))  # readings keep coming while it is down
            _wait_until(lambda: drainer.stats.failures >= 3, "failed retries")
            influxd.start()
            _wait_until(lambda: box.depth == 0, "the outbox to drain")
        finally:
            drainer.stop()
        h = box.health()
    assert (h.put, h.delivered, h.dead_lettered, h.dropped) == (80_000, 80_000, 0, 0)
    assert _count_sum(influxd, db) == (80_000, sum(range(80_000)))


def test_bad_lines_are_set_aside_and_the_rest_delivered(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    good = _points(0, 1000)
    # a syntax error, a field type conflict (same week as the good points: InfluxDB 1.x
    # keeps field types per weekly shard) and a duplicate field key
    bad = ["power,site=s v=", f'power,site=s,machine=m0 v="text" {T0 + 5}', "power,site=s v=1i,v"]
    lines = good[:300] + bad[:1] + good[300:700] + bad[1:] + good[700:]
    with Outbox(tmp_path / "o.db") as box:
        box.put(lines)
        drainer = Drainer(box, _v1(influxd.url, influx_db))
        assert not any(_drain_all(drainer))
        dead = box.dead_letters()
        assert sorted(d.line.decode() for d in dead) == sorted(bad)
        assert {d.status for d in dead} == {400}
        assert box.health().dead_lettered == 3 and box.health().delivered == 1000
    assert _count_sum(influxd, influx_db) == (1000, sum(range(1000)))
    # bisection: a few requests per bad line, not one per line
    assert drainer.stats.requests < 3 * 2 * 11


def _recording_stub(limit: int, received: list[str]) -> Callable[[HttpRequest], HttpResponse]:
    """A /write that answers 413 above `limit` lines and 400 for lines containing BAD."""

    def handle(req: HttpRequest) -> HttpResponse:
        lines = req.body.decode().split("\n")
        if len(lines) > limit:
            return HttpResponse(413, b'{"error":"Request Entity Too Large"}')
        if any("BAD" in line for line in lines):
            return HttpResponse(400, b'{"error":"unable to parse BAD"}')
        received.extend(lines)
        return HttpResponse(204)

    return handle


def test_413_splits_batches_and_remembers_the_smaller_size(
    tmp_path: Path, servers: ServerPool
) -> None:
    received: list[str] = []
    stub = servers.http(_recording_stub(1200, received))
    lines = _points(0, 9000)
    lines[4321] = "BAD line"
    with Outbox(tmp_path / "o.db") as box:
        box.put(lines)
        drainer = Drainer(box, _v1(stub.url, "db"))
        _drain_all(drainer)
        assert drainer.batch_lines <= 1200
        assert [d.line for d in box.dead_letters()] == [b"BAD line"]
    assert sorted(received) == sorted(lines[:4321] + lines[4322:])  # each line exactly once


@pytest.mark.parametrize(
    ("status", "retry_after", "wait_s"),
    [(503, "7", 7.0), (429, "2", 2.0), (429, "Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_honoured_and_nothing_leaves_meanwhile(
    tmp_path: Path, servers: ServerPool, status: int, retry_after: str, wait_s: float
) -> None:
    answers = [HttpResponse(status, b'{"error":"busy"}', {"Retry-After": retry_after})]
    stub = servers.http(lambda req: answers.pop() if answers else HttpResponse(204))
    with Outbox(tmp_path / "o.db") as box:
        box.put(_points(0, 10))
        drainer = Drainer(box, _v1(stub.url, "db"))
        wait = drainer.drain_once()
        assert wait_s <= wait <= wait_s * 1.1
        assert box.depth == 10 and drainer.stats.last_error == f"{status} busy"
        assert drainer.drain_once() == 0.0
        drainer.flush()
        assert box.depth == 0
    assert [len(r.body.split(b"\n")) for r in stub.requests] == [10, 10]


def test_without_retry_after_the_wait_grows_with_jitter_up_to_the_cap(
    tmp_path: Path, servers: ServerPool
) -> None:
    stub = servers.http(lambda req: HttpResponse(404, b'{"error":"database not found: db"}'))
    with Outbox(tmp_path / "o.db") as box:
        box.put(_points(0, 10))
        drainer = Drainer(
            box,
            _v1(stub.url, "db"),
            backoff_initial_s=1,
            backoff_max_s=8,
            rng=random.Random(4),
        )
        waits = [drainer.drain_once() for _ in range(6)]
        assert box.depth == 10 and box.health().dead_lettered == 0  # config error: keep
    steps = [1, 2, 4, 8, 8, 8]
    assert all(s / 2 <= w <= s for w, s in zip(waits, steps, strict=True))
    assert len(set(waits)) == 6  # jittered: no two gateways retry in lockstep
    assert drainer.stats.consecutive_failures == 6


def test_no_answer_at_all_keeps_the_lines(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put(_points(0, 10))
        drainer = Drainer(box, _v1(f"http://127.0.0.1:{free_port()}", "db"))
        assert drainer.drain_once() > 0
        assert box.depth == 10 and drainer.stats.last_status == NO_ANSWER
