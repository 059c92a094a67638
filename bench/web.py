"""Benchmark: the web page's server time for the floor page (30 machines) and the month page
(a month of 20 machines at 1 Hz), against an empty page rendered in the same run.

    .venv/bin/python bench/web.py [--days 30] [--repeats 5]

Builds a real ledger (readings ingested through Ledger.ingest, rows computed by the engine)
in a temp folder, then times whole requests through the ASGI app in-process (routing,
session, ledger reads, charts, template): what a tablet waits for, minus the network.
Goals: floor < 50 ms, month < 1 s (the month, and one day of it by quarter hour).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# The repository first: bench/agent.py would shadow the agent package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.serviceshop import write_config
from gateway.config import load_config
from gateway.engine.live import LiveView
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger
from gateway.ledger.live import LiveState
from gateway.web.app import COOKIE, WebState, build_app

T0_MS = 1_793_487_600_000  # 2026-11-01 00:00 Europe/Berlin
DAY_S = 86_400
GOALS = {"floor": 0.050, "month": 1.0}


def day_of_readings(rng: np.random.Generator, day: int) -> MachineReadings:
    """One local day at 1 Hz: off at night, idle, and 6-10 jobs of 20-60 min by day."""
    t = T0_MS + (day * DAY_S + np.arange(DAY_S, dtype=np.int64)) * 1000
    watts = np.zeros(DAY_S)
    watts[7 * 3600 : 19 * 3600] = 200.0
    for start in np.sort(rng.integers(7 * 3600, 18 * 3600, rng.integers(6, 11))):
        watts[start : start + rng.integers(1200, 3600)] = rng.choice([2000.0, 4000.0])
    watts *= 1.0 + 0.03 * rng.standard_normal(DAY_S)
    return MachineReadings(t, watts, np.full(DAY_S, np.nan))


def build(folder: Path, machines: int, days: int, live: bool = False) -> Path:
    """shop.toml and a ledger with `days` days of 1 Hz readings of `machines` machines;
    `live`: with each machine's newest reading in machine_view, as `shopwatt run` keeps it."""
    folder.mkdir()
    config = write_config(folder, None, sensors={f"m{k:02d}": f"s{k:02d}" for k in range(machines)})
    ledger = Ledger(load_config(config))
    rng = np.random.default_rng(1)
    for day in range(days):
        batch = {f"m{k:02d}": day_of_readings(rng, day) for k in range(machines)}

        views = {m: LiveView((int(r.t_ms[-1]), float(r.watts[-1]), 0.0)) for m, r in batch.items()}
        ledger.ingest(batch, "bench", state=LiveState(views=views) if live else None)
    return config


async def _get(app: Any, path: str, query: str, cookie: str) -> bytes:
    """One GET through the ASGI app; the response body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"cookie", f"{COOKIE}={cookie}".encode())],
    }  # fmt: skip
    body: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"GET {path}?{query}: status {status}")
    return b"".join(body)


def timed(config: Path, path: str, query: str, repeats: int) -> tuple[float, float, int]:
    """Seconds of the first request, the median of the next ones, and the page's size."""
    state = WebState(load_config(config), https=False)
    app = build_app(state)
    cookie = state.sessions.open("bench", "owner")
    start = time.perf_counter()
    page = asyncio.run(_get(app, path, query, cookie))  # also compiles the templates
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        asyncio.run(_get(app, path, query, cookie))
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), len(page)


def main() -> None:
    """Build the ledgers, time the pages, print figures, ratios and goals."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30, help="days of the month ledger")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopwatt-bench-web-") as tmp:
        t0 = time.perf_counter()
        floor_shop = build(Path(tmp) / "floor", 30, 1)
        live_shop = build(Path(tmp) / "live", 30, 1, live=True)
        month_shop = build(Path(tmp) / "month", 20, args.days)
        print(f"built the ledgers in {time.perf_counter() - t0:.0f} s "
              f"(30 machines x 1 day, 20 machines x {args.days} days, 1 Hz)")  # fmt: skip
        _, empty, _ = timed(floor_shop, "/login", "", args.repeats)
        print(f"empty page (the login form): {empty * 1000:8.1f} ms")
        for name, what, shop, query in (
            ("floor", "live shop (shopwatt run's machine_view)", live_shop, ""),
            ("floor", "replayed ledger (newest day decoded)", floor_shop, ""),
            ("month", f"{args.days} days x 20 machines", month_shop, "period=2026-11"),
            (
                "month",
                "one of its days by quarter hour",
                month_shop,
                "period=2026-11&day=2026-11-15",
            ),
        ):
            first, took, size = timed(shop, f"/{name}", query, args.repeats)
            goal = GOALS[name]
            print(
                f"{name} page, {what}: {took * 1000:8.1f} ms ({size / 1024:.0f} KiB), "
                f"{took / empty:5.0f}x the empty page; goal < {goal * 1000:.0f} ms: "
                + ("ok" if took < goal else "MISSED")
                + f" (first request {first * 1000:.0f} ms)"
            )


if __name__ == "__main__":
    main()
