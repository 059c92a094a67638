"""`python -m agent`: run the virtual shop against a broker, or write its shop.toml."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

import click

from agent.demo import demo
from agent.liverun import RunOptions, RunReport
from agent.localservers import LOOPBACK
from agent.shopplan import DEMO_PLAN, ShopPlan, load_plan
from agent.shoptoml import live_machines, shop_toml
from agent.virtualshop import VirtualShop
from gateway.cligroup import UserErrorGroup, config_option
from gateway.config import ShopConfig, load_config

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Group(UserErrorGroup):
    program = "agent"


class Duration(click.ParamType[float]):
    """'90', '90s', '30m', '8h', '2d' -> seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """Seconds as a float."""
        if isinstance(value, int | float):
            return float(value)
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if m is None or float(m[1]) <= 0:
            self.fail(f"{value!r}: expected a positive number with s, m, h or d (e.g. 8h)")
        return float(m[1]) * _UNITS_S[m[2] or "s"]


class Broker(click.ParamType[tuple[str, int]]):
    """'HOST:PORT' -> (host, port)."""

    name = "host:port"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        """The broker's host and port."""
        if isinstance(value, tuple):
            return value
        host, sep, port = str(value).rpartition(":")
        if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            self.fail(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
        return host, int(port)


def _start_ms(value: str | None, plan: ShopPlan) -> int | None:
    """--start: ISO 8601; without an offset it is the shop's local time."""
    if value is None or value == "now":
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected ISO 8601, e.g. 2026-11-17T05:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=plan.site.tz)
    return int(moment.timestamp() * 1000)


_plan = click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=DEMO_PLAN,
    show_default="the demo shop",
    help="The shop plan: which profile each machine runs, shifts, outages, reboots.",
)


@click.group(cls=_Group)
def main() -> None:
    """The virtual shop: simulated shopwatt sensors speaking the real protocol."""


@main.command()
@config_option
@_plan
@click.option("--broker", type=Broker(), help="HOST:PORT (default: shop.toml's [mqtt]).")
@click.option("--sensors", type=click.IntRange(min=1), help="Simulate the first N sensors.")
@click.option("--rate", type=float, default=0.1, show_default=True, help="Readings/s/sensor.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="x real time.")
@click.option("--duration", type=Duration(), default="8h", show_default=True)
@click.option("--start", help="Simulated start, ISO 8601 (local without offset); default now.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--schedule",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="jobs.csv whose jobs replace the generated ones of the machines it names.",
)
@click.option(
    "--flash",
    "flash_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the sensors' flash here: the next run is their next boot (else RAM).",
)
def simulate(
    config_path: Path,
    plan_path: Path,
    broker: tuple[str, int] | None,
    sensors: int | None,
    rate: float,
    speed: float,
    duration: float,
    start: str | None,
    seed: int,
    schedule: Path | None,
    flash_dir: Path | None,
) -> None:
    """Run the shop's sensors against a broker for DURATION of simulated time."""
    cfg = load_config(config_path)
    plan = load_plan(plan_path)
    host, port = broker or _configured_broker(cfg)
    opts = RunOptions(
        host=host,
        port=port,
        duration_s=duration,
        rate_hz=rate,
        speed=speed,
        start_ms=_start_ms(start, plan),
        seed=seed,
        sensors=sensors,
        schedule=schedule,
        flash_dir=flash_dir,
    )
    shop = VirtualShop(cfg, plan, opts)
    click.echo(
        f"{len(shop.machines)} sensors -> {host}:{port}, {rate:g} readings/s each, "
        f"{duration:g} s simulated at {speed:g}x (about {duration / speed:.0f} s); Ctrl-C stops",
        err=True,
    )
    try:
        report = shop.run()
    except KeyboardInterrupt:
        click.echo("agent: stopped", err=True)
        sys.exit(130)
    click.echo(render_report(report, opts))


def _configured_broker(cfg: ShopConfig) -> tuple[str, int]:
    if cfg.mqtt is None:
        raise click.UsageError(f"{cfg.source} has no [mqtt] section: give --broker HOST:PORT")
    return cfg.mqtt.host, cfg.mqtt.port


def render_report(report: RunReport, opts: RunOptions) -> str:
    """The run's summary: per machine what was sent, and the truth to compare with."""
    lines = [
        f"{'machine':<14} {'source':<16} {'readings':>8} {'buffered':>8} {'unsent':>6} "
        f"{'boots':>5} {'true kWh':>9} {'jobs':>4}"
    ]
    for m in report.machines.values():
        lines.append(
            f"{m.machine:<14} {m.source:<16} {m.readings:>8} {m.buffered:>8} {m.backlog:>6} "
            f"{m.boots:>5} {m.energy_wh / 1000:>9.3f} {len(m.jobs):>4}"
        )
    span_s = (report.end_ms - report.start_ms) / 1000
    per_s = report.readings / report.wall_s if report.wall_s else 0.0
    lines.append(
        f"{report.readings} readings in {report.wall_s:.1f} s wall ({per_s:.0f}/s) for "
        f"{span_s:g} s simulated; latest window {report.max_lag_s:.2f} s behind; "
        f"{report.job_events} job events; "
        + ("all delivered" if report.delivered else "NOT all delivered (see unsent)")
    )
    return "\n".join(lines)


@main.command()
@_plan
@click.option("--sensors", type=click.IntRange(min=1), help="Machines (replicas past the plan).")
@click.option("--broker", type=Broker(), default="127.0.0.1:1883", show_default=True)
@click.option("--influxdb", "influx_url", help="InfluxDB URL for the gateway, e.g. http://...")
@click.option("--database", default="shopwatt", show_default=True, help="InfluxDB database.")
@click.option("--storage", default="shopwatt-data", show_default=True, help="Gateway data dir.")
@click.option(
    "--meters",
    "meter_bus",
    type=Broker(),
    default="127.0.0.1:5020",
    show_default=True,
    help="Where the agent serves the plan's Modbus meters (TCP, one device id each).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("shop.toml"),
    show_default=True,
)
def shop(
    plan_path: Path,
    sensors: int | None,
    broker: tuple[str, int],
    influx_url: str | None,
    database: str,
    storage: str,
    meter_bus: tuple[str, int],
    output: Path,
) -> None:
    """Write the gateway's shop.toml for the virtual shop (a sensor or meter per machine)."""
    plan = load_plan(plan_path)
    click.echo(
        write_shop_toml(output, plan, sensors, broker, influx_url, database, storage, meter_bus)
    )


def write_shop_toml(
    path: Path,
    plan: ShopPlan,
    sensors: int | None,
    broker: tuple[str, int],
    influx_url: str | None = None,
    database: str = "shopwatt",
    storage: str = "shopwatt-data",
    meter_bus: tuple[str, int] = (LOOPBACK, 5020),
) -> str:
    """Write the live shop's shop.toml and load it back (validated); returns a summary."""
    machines = [lm.machine for lm in live_machines(plan, sensors, meter_bus)]
    extra: dict[str, dict[str, Any]] = {
        "storage": {"path": storage},
        "mqtt": {"host": broker[0], "port": broker[1]},
    }
    if influx_url:
        extra["influxdb"] = {"url": influx_url, "database": database}
    header = f"# shop.toml of the virtual shop ({len(machines)} sensors), by agent.cli\n\n"
    path.write_text(shop_toml(plan, machines, header, extra), encoding="utf-8")
    load_config(path)
    metered = sum(1 for m in machines if m.meter)
    return (
        f"{path}: {len(machines) - metered} machines with a sensor (broker {broker[0]}:"
        f"{broker[1]}), {metered} with a meter (Modbus TCP {meter_bus[0]}:{meter_bus[1]})"
    )


main.add_command(demo)
