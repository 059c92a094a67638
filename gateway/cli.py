"""`shopwatt` command line: one sub-command per job a user has."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click
from tqdm import tqdm

from gateway import __version__
from gateway.billing_cli import (
    customer_group,
    job_group,
    jobs_command,
    jobs_text,
    unassigned_jobs,
)
from gateway.cligroup import INSTANT_HELP, UserErrorGroup, instant
from gateway.config import ShopConfig, load_config
from gateway.engine.localtime import local_time
from gateway.engine.model import MachineReadings
from gateway.export import BY, Table, build_table, write_csv, write_xlsx
from gateway.export.table import By
from gateway.export.to_text import render_text
from gateway.inputs.csvfile import read_jobs, read_readings
from gateway.ledger import Dropped, Ledger, Replayed, Status
from gateway.ledger.periods import parse_month
from gateway.provision.cli import provision_group

_BIG_FILE = 20_000_000  # bytes: from here on replay shows a progress bar


@click.group(cls=UserErrorGroup)
@click.version_option(__version__, prog_name="shopwatt")
def main() -> None:
    """shopwatt: per-job energy and machine costs for micro-factories."""


_config = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("shop.toml"),
    show_default=True,
    envvar="SHOPWATT_CONFIG",
    help="The shop's shop.toml (also $SHOPWATT_CONFIG).",
)
_day = click.DateTime(formats=["%Y-%m-%d"])


def replay_files(
    cfg: ShopConfig,
    readings: Path | None,
    jobs: Path | None,
    bar: bool = False,
    create_customers: bool = False,
) -> Replayed:
    """Parse and check the files, then replay them into the ledger in one transaction."""
    # disable=None: tqdm draws only on a terminal, never into a log file or pipe.
    with tqdm(desc="replay", unit="step", disable=None if bar else True, leave=False) as progress:
        progress.set_postfix_str(f"reading {readings or jobs}")
        now_ms = time.time_ns() // 1_000_000  # no reading may be dated a day after this
        parsed = read_readings(readings, cfg.machines, now_ms) if readings else None
        explicit = read_jobs(jobs, cfg.machines, now_ms) if jobs else None

        def step(what: str, done: int, total: int) -> None:
            progress.total = total
            progress.set_postfix_str(what)
            progress.update(done - progress.n)

        replayed = Ledger(cfg).replay(parsed, explicit, step, create_customers)
    publish(cfg, replayed.recomputed, parsed.machines if parsed else None)
    return replayed


def publish(
    cfg: ShopConfig,
    recomputed: dict[str, tuple[str, str]],
    readings: dict[str, MachineReadings] | None = None,
) -> None:
    """With [influxdb]: queue what changed for Grafana (docs/gateway.md) and try to send it."""
    if cfg.influxdb is None:
        return
    from gateway.outputs.publish import queue_ledger_changes  # loads the InfluxDB client

    queued, waiting = queue_ledger_changes(cfg, recomputed, readings)
    if queued:
        note = f", {waiting:,} still waiting for `shopwatt run`" if waiting else ", all sent"
        click.echo(f"InfluxDB: queued {queued:,} points{note}", err=True)


def _summary(replayed: Replayed, readings: Path | None, jobs: Path | None) -> str:
    lines = []
    if readings:
        lines.append(
            f"{readings}: {replayed.rows:,} rows, {replayed.added:,} new readings; dropped "
            f"{replayed.duplicates:,} duplicate rows (same machine and time twice in the file) "
            f"and {replayed.repeated:,} rows already in the ledger; {replayed.conflicts:,} of "
            "the dropped rows had other values than the row kept (the first one)"
        )
    if jobs:
        lines.append(f"{jobs}: {replayed.jobs} jobs (detection runs around them)")
    for machine, (first, last) in replayed.recomputed.items():
        lines.append(f"recomputed {machine}: {first} .. {last}")
    if not replayed.recomputed:
        lines.append("nothing new: the ledger is unchanged")
    if replayed.adjustments:
        lines.append(f"{replayed.adjustments} adjustment rows pending for closed months")
    return "\n".join(lines)


@main.command()
@_config
@click.option("--input", "readings", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--jobs", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--create-customers",
    is_flag=True,
    help="Add customers jobs.csv names that the ledger does not know (default: refuse).",
)
def replay(
    config_path: Path, readings: Path | None, jobs: Path | None, create_customers: bool
) -> None:
    """Load readings.csv (and jobs.csv) into the ledger; a bad row stops it before any write."""
    if readings is None and jobs is None:
        raise click.UsageError("give --input readings.csv, --jobs jobs.csv, or both")
    cfg = load_config(config_path)
    big = readings is not None and readings.exists() and readings.stat().st_size >= _BIG_FILE
    replayed = replay_files(cfg, readings, jobs, bar=big, create_customers=create_customers)
    click.echo(_summary(replayed, readings, jobs))


def write_table(table: Table, fmt: str, output: Path | None) -> None:
    """CSV to a file or stdout, XLSX to a file."""
    if fmt == "xlsx":
        if output is None:
            raise click.UsageError("--format xlsx needs --output FILE.xlsx")
        write_xlsx(table, output)
    else:
        write_csv(table, output or sys.stdout)


@main.command()
@_config
@click.option("--from", "first", type=_day, required=True, help="First local date.")
@click.option("--to", "end", type=_day, required=True, help="Local date after the last one.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="Default: by --output.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.option(
    "--by",
    type=click.Choice(BY),
    default="job",
    show_default=True,
    help="CSV: one line per row, or sums per customer or machine (XLSX has all three).",
)
def export(
    config_path: Path, first: datetime, end: datetime, fmt: str | None, output: Path | None, by: str
) -> None:
    """Export the rows of the local dates [--from, --to) for the accountant."""
    if end <= first:
        raise click.BadParameter(f"--to {end:%Y-%m-%d} must be after --from", param_hint="--to")
    fmt = fmt or ("xlsx" if output and output.suffix.lower() == ".xlsx" else "csv")
    cfg = load_config(config_path)
    selection = Ledger(cfg).select(first.date(), end.date())
    # The XLSX always holds every view (rows, by machine, by customer): --by is for CSV.
    view = cast(By, "job" if fmt == "xlsx" else by)
    table = build_table(selection, cfg.site.tz, cfg.site.currency, view)
    write_table(table, fmt, output)
    if selection.open_jobs:
        click.echo(
            f"note: {selection.open_jobs} job(s) still running at the end of the data are "
            "not exported; they belong to the period in which they end",
            err=True,
        )
    if output:
        click.echo(f"wrote {output}", err=True)


@main.command()
@_config
@click.option("--month", required=True, help="The month to close, YYYY-MM (local calendar).")
@click.option("--yes", is_flag=True, help="Close even with jobs that have no customer.")
def close(config_path: Path, month: str, yes: bool) -> None:
    """Freeze a month: its rows never change; later changes become adjustment rows."""
    cfg = load_config(config_path)
    ledger = Ledger(cfg)
    period = parse_month(month)
    unassigned = unassigned_jobs(ledger, period)
    if unassigned:
        click.echo(f"{len(unassigned)} job(s) of {period} have no customer:")
        click.echo(jobs_text(unassigned, cfg))
        if not yes:
            click.confirm("close the month with them as they are?", abort=True)
    closed = ledger.close(period)
    click.echo(
        f"closed {closed.period}: {closed.rows} rows and {closed.adjustments} adjustment rows "
        f"frozen, {closed.energy_kwh} kWh, {closed.total_cents / 100:.2f} total cost"
    )
    if closed.open_jobs:
        click.echo(
            f"note: {closed.open_jobs} job(s) still running at the end of the data are not in "
            "the snapshot; if they end in this month they arrive as adjustment rows",
            err=True,
        )


@main.command()
@_config
@click.option("--all", "everything", is_flag=True, help="Every machine, not only changed ones.")
def recompute(config_path: Path, everything: bool) -> None:
    """Recompute after a shop.toml change (tariff, machine settings, time zone)."""
    cfg = load_config(config_path)
    recomputed = Ledger(cfg).recompute(everything)
    publish(cfg, recomputed)
    for machine, (first, last) in recomputed.items():
        click.echo(f"recomputed {machine}: {first} .. {last}")
    if not recomputed:
        click.echo("nothing to recompute: every machine matches shop.toml (use --all to force)")


@main.group()
def readings() -> None:
    """Readings already in the ledger."""


@readings.command("drop")
@_config
@click.option("--machine", required=True, help="The machine whose readings go.")
@click.option(
    "--from", "lo", required=True, callback=instant, help=f"First instant: {INSTANT_HELP}."
)
@click.option("--to", "hi", required=True, callback=instant, help="The instant after the last one.")
@click.option("--yes", is_flag=True, help="Do not ask before dropping.")
def readings_drop(config_path: Path, machine: str, lo: int, hi: int, yes: bool) -> None:
    """Remove a machine's readings in [--from, --to) (bad data that got in) and recompute."""
    cfg = load_config(config_path)
    ledger = Ledger(cfg)
    shown = ledger.drop_readings(machine, lo, hi, preview=True)
    if not shown.readings:
        click.echo(f"no readings of {machine} in that range: nothing dropped")
        return
    click.echo(_dropped_text(shown, cfg, "would drop"))
    if not yes:
        click.confirm("drop them?", abort=True)
    dropped = ledger.drop_readings(machine, lo, hi, expect=shown.sha256)
    if dropped.recomputed:
        publish(cfg, {machine: dropped.recomputed})
    click.echo(_dropped_text(dropped, cfg, "dropped"))


def _dropped_text(d: Dropped, cfg: ShopConfig, verb: str) -> str:
    assert d.first_ms is not None and d.last_ms is not None
    first, last = (
        f"{local_time(t, cfg.site.tz):%Y-%m-%d %H:%M:%S%z}" for t in (d.first_ms, d.last_ms)
    )
    lines = [
        f"{verb} {d.readings:,} readings of {d.machine} from {first} to {last}, "
        f"{d.metered_wh / 1000:.3f} kWh metered with them (sha256 {d.sha256})"
    ]
    if d.recomputed:
        lines.append(f"recomputed {d.machine}: {d.recomputed[0]} .. {d.recomputed[1]}")
    if d.adjustments:
        lines.append(f"{d.adjustments} adjustment rows pending for closed months")
    return "\n".join(lines)


def _status_text(status: Status, cfg: ShopConfig) -> str:
    def local(t_ms: int | None) -> str:
        if t_ms is None:
            return "-"
        return f"{local_time(t_ms, cfg.site.tz):%Y-%m-%d %H:%M}"

    lines = [f"ledger: {status.path}"]
    head = ["machine", "readings", "first", "last", "kWh", "open", "dup", "again", "diff"]
    head += ["resets", "jumps", "gaps", "gap h", "config"]
    rows = [head]
    for m in status.machines:
        c = m.counters
        rows.append(
            [
                m.machine,
                f"{m.readings:,}",
                local(m.first_ms),
                local(m.last_ms),
                f"{m.metered_wh / 1000:.3f}",
                str(m.open_jobs),
                str(c.get("duplicate_rows", 0)),
                str(c.get("repeated_rows", 0)),
                str(c.get("conflicting_rows", 0)),
                str(c["counter_resets"]),
                str(c["implausible_jumps"]),
                str(c["gaps"]),
                f"{c['gap_s'] / 3600:.2f}",
                "current" if m.config_current else "CHANGED: run recompute",
            ]
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(
        "dup: duplicate rows in a file; again: rows already in the ledger; diff: of those, "
        "rows with other values (first kept); resets/jumps/gaps: counter repairs and "
        "intervals with unknown energy"
    )
    closed = ", ".join(f"{p} ({at} by {who})" for p, (at, who) in status.closed.items())
    lines.append(f"closed months: {closed or 'none'}")
    lines.append(f"pending adjustment rows: {status.pending_adjustments}")
    lines += [f"assignment to check: {line}" for line in status.unsettled]
    lines.append("recent changes:")
    lines += [f"  {e.at} {e.who} {e.action} {_brief(e.detail)}" for e in status.audit]
    return "\n".join(lines)


def _brief(detail: dict[str, Any]) -> str:
    if "input" in detail or "jobs_file" in detail:
        files = [
            f"{f['path']} (sha256 {f['sha256'][:12]})"
            for f in (detail["input"], detail["jobs_file"])
            if f
        ]
        return f"{', '.join(files)}: +{detail['added']} readings, {detail['jobs']} jobs"
    if "period" in detail:
        return f"{detail['period']}: {detail['rows']} rows frozen"
    if "id" in detail:  # customers and job assignments: every field, briefly
        return ", ".join(f"{k} {v}" for k, v in detail.items() if v not in ("", None, False))
    if "sha256" in detail:
        return (
            f"{detail['machine']}: -{detail['readings']} readings, "
            f"{detail['metered_wh'] / 1000:.3f} kWh (sha256 {detail['sha256'][:12]})"
        )
    return f"{', '.join(detail.get('machines', [])) or 'nothing'} ({detail.get('reason', '')})"


@main.command()
@_config
def status(config_path: Path) -> None:
    """Readings per machine, what was dropped or repaired, closed months, recent changes."""
    cfg = load_config(config_path)
    click.echo(_status_text(Ledger(cfg).status(), cfg))


@main.command()
@_config
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning"]),
    default="info",
    show_default=True,
)
def run(config_path: Path, log_level: str) -> None:
    """The gateway service: sensors (MQTT) and meters (Modbus) -> ledger and InfluxDB."""
    from gateway.service import run_service  # paho and pymodbus load only for the service

    # systemd's journal adds the time; the level and module say where a line comes from.
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    run_service(load_config(config_path))


@main.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for shop.toml, the CSV inputs, the ledger and the export (default: a temp one).",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(output: Path | None, seed: int) -> None:
    """A simulated shop day through replay -> engine -> ledger -> export (no servers)."""
    from agent.shopday import simulate_shop_day  # the simulator loads only for the demo

    out = output or Path(tempfile.mkdtemp(prefix="shopwatt-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    click.echo(f"simulating a shop day (seed {seed}) ...", err=True)
    shop = simulate_shop_day(seed)
    config_path, readings, jobs = out / "shop.toml", out / "readings.csv", out / "jobs.csv"
    config_path.write_text(shop.config_toml, encoding="utf-8")
    shop.readings_csv(readings)
    shop.jobs_csv(jobs)
    cfg = load_config(config_path)
    # The simulated schedule names its customers: the demo knows them all.
    replayed = replay_files(cfg, readings, jobs, bar=True, create_customers=True)
    click.echo(_summary(replayed, readings, jobs), err=True)
    first, end = shop.day, shop.day + timedelta(days=1)
    table = build_table(Ledger(cfg).select(first, end), cfg.site.tz, cfg.site.currency)
    click.echo(render_text(table))
    name = f"costs-{first:%Y%m%d}"
    csv_path, xlsx_path = out / f"{name}.csv", out / f"{name}.xlsx"
    write_table(table, "csv", csv_path)
    write_table(table, "xlsx", xlsx_path)
    click.echo(f"\nCSV:    {csv_path}\nXLSX:   {xlsx_path}\nledger: {Ledger(cfg).path}")


main.add_command(provision_group(_config))
main.add_command(customer_group(_config))
main.add_command(job_group(_config))
main.add_command(_config(jobs_command))
