"""Outbox drain rate against a raw HTTP POST of the same lines, both into a real influxd.

    .venv/bin/python bench/outbox.py [--points 500000] [--batch 5000] [--rounds 5]

The floor is measured in the same run: the same lines POSTed to /write in batches of
`--batch` over one keep-alive connection, with nothing in between. The outbox side puts
the lines into a fresh outbox first (timed and reported apart), then drains it with the
gateway's Drainer + HttpWriter. The two alternate in `--rounds` rounds. Goal: drain
rate >= 0.5 x the raw rate. Both databases are counted afterwards, so a fast but lossy
drain cannot pass.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.localservers import Influxd, ServerPool
from gateway.config import InfluxDB
from gateway.outputs.drain import Drainer
from gateway.outputs.influxdb import HttpWriter
from gateway.outputs.outbox import Outbox
from gateway.outputs.schema import power_lines

GOAL = 0.5


def make_lines(n: int, sensors: int = 50) -> list[str]:
    """n `power` points: `sensors` series at 1 Hz, like a shop's live readings."""
    per = -(-n // sensors)
    t = 1_700_000_000_000 + np.arange(per, dtype=np.int64) * 1000
    rng = np.random.default_rng(1)
    lines: list[str] = []
    for s in range(sensors):
        watts = np.round(rng.uniform(0, 3000, per), 1)
        wh = np.cumsum(watts) / 3600.0
        lines += power_lines("bench", f"m{s // 2:02d}", f"s{s:02d}", t, watts, wh)
    return lines[:n]


def raw_post(influxd: Influxd, db: str, lines: list[str], batch: int) -> float:
    """Seconds to POST all lines in batches over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", influxd.http_port, timeout=60)
    bodies = ["\n".join(lines[i : i + batch]).encode() for i in range(0, len(lines), batch)]
    start = time.perf_counter()
    for body in bodies:
        conn.request("POST", f"/write?db={db}&precision=ms", body)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 204:
            raise SystemExit(f"raw POST failed: {resp.status}")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def outbox_drain(influxd: Influxd, db: str, lines: list[str], batch: int) -> tuple[float, float]:
    """(seconds to put, seconds to drain) through a fresh outbox."""
    with tempfile.TemporaryDirectory() as tmp, Outbox(Path(tmp) / "outbox.db") as box:
        start = time.perf_counter()
        for i in range(0, len(lines), batch):
            box.put(lines[i : i + batch])
        put_s = time.perf_counter() - start
        drainer = Drainer(box, HttpWriter(InfluxDB(url=influxd.url, database=db)), batch)
        start = time.perf_counter()
        while box.depth:
            if drainer.drain_once():
                raise SystemExit(f"drain failed: {drainer.stats.last_error}")
        drain_s = time.perf_counter() - start
        drainer.stop()
    return put_s, drain_s


def count(influxd: Influxd, db: str) -> int:
    """Points stored in db."""
    return int(influxd.rows('SELECT count("watts") FROM "power"', db)[0]["count"])


def main() -> None:
    """Run both, print points/s and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    lines = make_lines(args.points)
    pool = ServerPool()
    try:
        influxd = pool.influxd()
        raw_db, box_db = influxd.create_database("raw"), influxd.create_database("outbox")
        # Alternate the two in rounds: the machine is shared, and load that changes
        # during the run then weighs on both sides alike.
        raw_s = put_s = drain_s = 0.0
        step = -(-len(lines) // args.rounds)
        for first in range(0, len(lines), step):
            part = lines[first : first + step]
            raw_s += raw_post(influxd, raw_db, part, args.batch)
            put, drain = outbox_drain(influxd, box_db, part, args.batch)
            put_s, drain_s = put_s + put, drain_s + drain
        stored = count(influxd, raw_db), count(influxd, box_db)
    finally:
        pool.close()
    n = len(lines)
    raw_rate, drain_rate = n / raw_s, n / drain_s
    print(f"points: {n}, batch: {args.batch} lines, {args.rounds} alternating rounds")
    print(f"raw POST /write     : {raw_rate:12,.0f} points/s  ({raw_s:.2f} s)")
    print(f"outbox put          : {n / put_s:12,.0f} points/s  ({put_s:.2f} s)")
    print(f"outbox drain        : {drain_rate:12,.0f} points/s  ({drain_s:.2f} s)")
    print(f"ratio drain / raw   : {drain_rate / raw_rate:.2f}  (goal >= {GOAL})")
    print(f"stored raw / outbox : {stored[0]} / {stored[1]}")
    if stored != (n, n):
        raise SystemExit("FAIL: points missing")
    if drain_rate / raw_rate < GOAL:
        raise SystemExit("FAIL: below goal")


if __name__ == "__main__":
    main()
