"""`make stack-demo`: the whole system on this machine, with the virtual shop as its sensors.

Starts mosquitto and influxd on free loopback ports, writes the virtual shop's shop.toml,
starts the gateway (`shopwatt run`) and runs the demo shop's day through them, faster
than real time: the same machines, jobs, outages and reboot as `make demo` (same plan,
seed and day), but measured by the firmware on simulated sensors and carried over MQTT.
Then it prints the job cost table, the InfluxDB series the gateway wrote and where the
Grafana dashboards read them, and stops everything it started, also on Ctrl-C or error.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import click

from agent.cli import Duration, render_report, write_shop_toml
from agent.liverun import RunOptions, RunReport
from agent.localservers import LOOPBACK, Influxd, Mosquitto
from agent.serviceshop import BROKER_CONFIG, Gateway
from agent.shopday import DEMO_DAY
from agent.shopplan import load_plan
from agent.virtualshop import VirtualShop
from gateway.config import ShopConfig, load_config
from gateway.errors import LedgerError, ServerError, ShopwattError
from gateway.export import build_table
from gateway.export.to_text import render_text
from gateway.ledger import Ledger

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS = REPO / "grafana" / "dashboards"
DATABASE = "shopwatt"
WAIT_S = 60.0


def ledger_readings(cfg: ShopConfig) -> int:
    """Readings the gateway stored so far (0 before its ledger exists)."""
    ledger = Ledger(cfg)
    # Never open a ledger that is not there yet: a failed read of a missing ledger removes
    # the files, which could be the ones the gateway is creating at that very moment.
    if not ledger.path.exists():
        return 0
    try:
        return sum(m.readings for m in ledger.status(0).machines)
    except LedgerError:  # created but its schema not written yet
        return 0


def wait_for_ledger(cfg: ShopConfig, readings: int, gateway: Gateway) -> int:
    """Wait until the gateway stored `readings` readings (or stops making progress)."""
    stored, last_change = 0, time.monotonic()
    while stored < readings and time.monotonic() - last_change < WAIT_S:
        time.sleep(0.5)
        now = ledger_readings(cfg)
        if now != stored:
            stored, last_change = now, time.monotonic()
        if gateway.proc is None or gateway.proc.poll() is not None:
            raise ServerError(f"the gateway stopped; {gateway.log_path}:\n{gateway.tail()}")
    return stored


def influx_series(influxd: Influxd, db: str) -> list[tuple[str, int, int]]:
    """(measurement, series, points) of everything in the database."""
    out = []
    for row in influxd.rows("SHOW MEASUREMENTS", db):
        name = row["name"]
        series = len(influxd.rows(f'SHOW SERIES FROM "{name}"', db))
        counts = influxd.rows(f'SELECT COUNT(*) FROM "{name}"', db)
        points = max((v for k, v in counts[0].items() if k.startswith("count")), default=0)
        out.append((name, series, int(points)))
    return out


def dashboards() -> list[tuple[str, str, list[str]]]:
    """(title, uid, measurements its panels query) of the provisioned dashboards."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        queries = [
            t.get("query", "") for p in board.get("panels", []) for t in p.get("targets", [])
        ]
        used = sorted({m for q in queries for m in re.findall(r'FROM "([A-Za-z_]+)"', q)})
        out.append((board["title"], board["uid"], used))
    return out


def grafana_hints(influxd: Influxd, day: dt.date, tz: dt.tzinfo) -> str:
    """Where the dashboards would read the demo's data."""
    start = dt.datetime.combine(day, dt.time(), tz)
    span = f"from={int(start.timestamp() * 1000)}&to={int(start.timestamp() * 1000) + 86_400_000}"
    lines = [
        "Grafana (grafana/provisioning/, docs/dashboards.md) would read them with",
        f"  SHOPWATT_INFLUX_URL={influxd.url} SHOPWATT_INFLUX_DATABASE={DATABASE}",
    ]
    for title, uid, used in dashboards():
        lines.append(f"  {title:<26} <grafana>/d/{uid}?{span}")
        lines.append(f"  {'':<26} reads {', '.join(used)}")
    return "\n".join(lines)


@contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C, so the clean-up below always runs."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(shop: VirtualShop, done: threading.Event) -> None:
    """A line every 10 s: how far the simulated day is."""
    while not done.wait(10.0):
        now = dt.datetime.fromtimestamp(shop.clock.now_ms() / 1000, shop.plan.site.tz)
        readings = sum(m.sensor.windows for m in shop.machines)
        click.echo(f"  ... simulated {now:%H:%M}, {readings} readings", err=True)


def run_demo(
    out: Path, start: dt.datetime, hours: float, speed: float, rate: float, seed: int
) -> None:
    """The whole demo from local `start` on; everything started is stopped at the end."""
    plan = load_plan()
    say = click.echo
    with ExitStack() as stack, _terminated_as_interrupt():
        say("starting mosquitto and influxd on 127.0.0.1 ...", err=True)
        broker = Mosquitto(extra_config=BROKER_CONFIG)
        stack.callback(broker.close)
        broker.start()
        influxd = Influxd()
        stack.callback(influxd.close)
        influxd.start()
        influxd.create_database(DATABASE)
        config = out / "shop.toml"
        write_shop_toml(config, plan, None, (LOOPBACK, broker.port), influxd.url, DATABASE)
        cfg = load_config(config)
        gateway = Gateway(config)
        stack.callback(gateway.stop)
        gateway.start().ready()
        say(
            f"mosquitto :{broker.port}, influxd :{influxd.http_port}, gateway "
            f"(log {gateway.log_path}); simulating {start:%Y-%m-%d %H:%M} for {hours:g} h "
            f"at {speed:g}x ...",
            err=True,
        )
        opts = RunOptions(
            host=LOOPBACK,
            port=broker.port,
            duration_s=hours * 3600,
            rate_hz=rate,
            speed=speed,
            start_ms=int(start.timestamp() * 1000),
            seed=seed,
        )
        shop = VirtualShop(cfg, plan, opts)
        done = threading.Event()
        threading.Thread(target=_progress, args=(shop, done), daemon=True).start()
        try:
            report = shop.run()
        finally:
            done.set()
        say(render_report(report, opts), err=True)
        _finish(cfg, report, gateway, influxd, start.date())


def _finish(
    cfg: ShopConfig, report: RunReport, gateway: Gateway, influxd: Influxd, day: dt.date
) -> None:
    """Let the gateway catch up and stop, then print what it made of the day."""
    delivered = report.readings - sum(m.backlog for m in report.machines.values())
    stored = wait_for_ledger(cfg, delivered, gateway)
    code = gateway.stop()
    click.echo(f"gateway stored {stored} of {delivered} delivered readings; exit code {code}\n")
    table = build_table(
        Ledger(cfg).select(day, day + dt.timedelta(days=1)), cfg.site.tz, cfg.site.currency
    )
    click.echo(render_text(table))
    click.echo(f"\nInfluxDB {influxd.url}, database {DATABASE}:")
    for name, series, points in influx_series(influxd, DATABASE):
        click.echo(f"  {name:<14} {series:>4} series {points:>8} points")
    click.echo("\n" + grafana_hints(influxd, day, cfg.site.tz))
    click.echo(f"\nshop.toml, ledger and gateway log: {cfg.source.parent}")


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for shop.toml, the gateway's ledger and log (default: a temp one).",
)
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=str(DEMO_DAY), show_default=True)
@click.option("--start", default="00:00", show_default=True, help="Local time of day, HH:MM.")
@click.option("--duration", type=Duration(), default="24h", show_default=True, help="Simulated.")
@click.option("--speed", type=float, default=1200.0, show_default=True, help="x real time.")
@click.option("--rate", type=float, default=0.1, show_default=True, help="Readings/s/sensor.")
@click.option("--seed", type=int, default=7, show_default=True)
def main(
    output: Path | None,
    day: dt.datetime,
    start: str,
    duration: float,
    speed: float,
    rate: float,
    seed: int,
) -> None:
    """Run the full stack (broker, InfluxDB, gateway) with the virtual shop's day."""
    out = output or Path(tempfile.mkdtemp(prefix="shopwatt-stack-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        if (out / "shopwatt-data").exists():
            # The same sensors' boot 1 again would be dropped as duplicates by its ledger.
            raise ShopwattError(
                f"{out / 'shopwatt-data'} exists: remove it or pick another --output"
            )
        try:
            at = dt.time.fromisoformat(start)
        except ValueError:
            raise click.BadParameter(f"{start!r}: expected HH:MM", param_hint="--start") from None
        begin = dt.datetime.combine(day.date(), at, load_plan().site.tz)
        run_demo(out, begin, duration / 3600, speed, rate, seed)
    except KeyboardInterrupt:
        click.echo("stack-demo: interrupted; everything it started is stopped", err=True)
        sys.exit(130)
    except ShopwattError as err:
        click.echo(f"stack-demo: error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
