"""`shopwatt` command line: one sub-command per job a user has."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, cast

import click

from gateway import __version__
from gateway.billing_cli import (
    INSTANT_HELP,
    force_option,
    instant,
    local_day,
)
from gateway.cligroup import UserErrorGroup, config_option
from gateway.clock import now_ms
from gateway.config import ShopConfig, load_config
from gateway.engine.localtime import local_time, period_dates
from gateway.engine.model import MachineReadings
from gateway.errors import OutputError, ShopwattError
from gateway.export import BY, Table, build_table, write_csv
from gateway.export.table import By
from gateway.export.to_bill import bill_text
from gateway.export.to_csv import DIALECTS, Dialect, write_csv_binary
from gateway.export.to_text import columns
from gateway.inputs.prices import FORMATS as PRICE_FORMATS
from gateway.inputs.prices import Format as PriceFormat
from gateway.inputs.prices import read_prices
from gateway.ledger import Dropped, Ledger, Replayed, Selection, Status
from gateway.ledger.periods import parse_month
from gateway.ledger.prices import co2_series, spot_series
from gateway.outfile import check_target, output_file

_BIG_FILE = 20_000_000  # bytes: from here on replay shows a progress bar


PLUGINS = "shopwatt.commands"  # entry points through which other packages add commands
# Commands that load heavy modules (provision: cryptography; web: starlette, argon2) are
# imported only when named, so `shopwatt run` on a Pi never pays for them.
_LAZY = {
    "provision": "gateway.provision.cli:provision",
    "web": "gateway.web.cli:web",
    "customer": "gateway.billing_cli:customer",
    "job": "gateway.billing_cli:job",
    "jobs": "gateway.billing_cli:jobs",
    "member": "gateway.members_cli:member",
    "statement": "gateway.billing_cli:statement",
}


def _elsewhere() -> dict[str, EntryPoint]:
    """Commands defined outside this module: lazy built-ins and other packages' plugins."""
    lazy = {name: EntryPoint(name, target, PLUGINS) for name, target in _LAZY.items()}
    return lazy | {ep.name: ep for ep in entry_points(group=PLUGINS)}


def _missing(name: str, err: ImportError) -> click.Command:
    """A stand-in for a plugin command whose package is not installed: says what to install."""
    why = f"needs the agent: pip install 'shopwatt[agent]' ({err})"

    def refuse() -> None:
        raise ShopwattError(f"`shopwatt {name}` {why}")

    return click.Command(name, callback=refuse, help=why[0].upper() + why[1:])


class _Shopwatt(UserErrorGroup):
    """The gateway's commands plus those the agent adds (`demo`), each loaded only when
    named, so the gateway never imports the agent and runs on a Pi without it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_elsewhere()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        found = _elsewhere().get(cmd_name) if command is None else None
        if found is None:
            return command
        if cmd_name in _LAZY:
            builtin: click.Command = found.load()
            return builtin
        try:
            plugin: click.Command = found.load()
        except ImportError as err:
            return _missing(cmd_name, err)
        return plugin


@click.group(cls=_Shopwatt)
@click.version_option(__version__, prog_name="shopwatt")
def main() -> None:
    """shopwatt: per-job energy and machine costs for micro-factories."""


def replay_files(
    cfg: ShopConfig,
    readings: Path | None,
    jobs: Path | None,
    bar: bool = False,
    create_customers: bool = False,
) -> Replayed:
    """Parse and check the files, then replay them into the ledger in one transaction."""
    # Imported here: the parser (pyarrow) and tqdm are for replay, not for `shopwatt run`.
    from tqdm import tqdm

    from gateway.inputs.csvfile import ReadingsCsv, read_jobs

    # disable=None: tqdm draws only on a terminal, never into a log file or pipe.
    with tqdm(desc="replay", unit="step", disable=None if bar else True, leave=False) as progress:
        progress.set_postfix_str(f"reading {readings or jobs}")
        now = now_ms()  # no reading may be dated a day after this
        parsed = ReadingsCsv(readings, cfg.metered, now) if readings else None
        explicit = read_jobs(jobs, cfg.machines, now) if jobs else None

        def step(what: str, done: int, total: int) -> None:
            progress.total = total
            progress.set_postfix_str(what)
            progress.update(done - progress.n)

        ledger = Ledger(cfg)
        replayed = ledger.replay(parsed, explicit, step, create_customers)
    # The replayed days' readings come back from the ledger, one machine at a time.
    publish(ledger, replayed.recomputed, ledger.stored(replayed.recomputed) if parsed else None)
    return replayed


def publish(
    ledger: Ledger,
    recomputed: dict[str, tuple[str, str]],
    readings: Mapping[str, MachineReadings] | None = None,
) -> None:
    """With [influxdb]: queue what changed for Grafana (docs/gateway.md) and try to send it."""
    cfg = ledger.cfg
    if cfg.influxdb is None:
        return
    from gateway.outputs.publish import queue_ledger_changes  # the outbox: only with [influxdb]

    queued, waiting = queue_ledger_changes(
        cfg, ledger.rows_of(recomputed), readings, ledger.price_slots
    )
    if queued:
        note = f", {waiting:,} still waiting for `shopwatt run`" if waiting else ", all sent"
        click.echo(f"InfluxDB: queued {queued:,} points{note}", err=True)


def replay_summary(replayed: Replayed, readings: Path | None, jobs: Path | None) -> str:
    """What a replay added, dropped and recomputed, one line per fact."""
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
        # The ledger still records the replay (audit trail) and its dropped-row counters.
        lines.append("nothing new: no readings added, no rows changed (the replay is audited)")
    if replayed.adjustments:
        lines.append(f"{replayed.adjustments} adjustment rows pending for closed months")
    return "\n".join(lines)


@main.command()
@config_option
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
    click.echo(replay_summary(replayed, readings, jobs))


_SUFFIX_FORMAT = {".csv": "csv", ".xlsx": "xlsx"}


def output_format(fmt: str | None, output: Path | None) -> str:
    """--format, else what --output's suffix says, else CSV; a contradiction is an error."""
    implied = _SUFFIX_FORMAT.get(output.suffix.lower()) if output else None
    if fmt and implied and fmt != implied:
        raise OutputError(f"--format {fmt} but --output {output} names a .{implied} file")
    if fmt == "xlsx" and output is None:
        raise OutputError("--format xlsx needs --output FILE.xlsx")
    return fmt or implied or "csv"


def write_table(
    table: Table,
    fmt: str,
    output: Path | None,
    protected: list[Path],
    force: bool,
    dialect: Dialect = "plain",
    title: Sequence[tuple[str, str]] = (),
) -> None:
    """CSV to stdout, or CSV / XLSX (with its title block) to a new file
    (gateway/outfile.py: never a half file)."""
    if output is None:
        write_csv(table, sys.stdout, dialect)
        return
    with output_file(output, protected=protected, force=force) as fh:
        if fmt == "xlsx":
            from gateway.export.to_xlsx import write_xlsx  # openpyxl: only for an XLSX

            write_xlsx(table, fh, title)
        else:
            write_csv_binary(table, fh, dialect)


def export_title(
    cfg: ShopConfig, selection: Selection, first: date, end: date
) -> list[tuple[str, str]]:
    """The XLSX title block: what the sheet is, whose, for when, priced how, final or not."""
    last = end - timedelta(days=1)
    return [
        ("shopwatt export", ""),
        ("site", cfg.site.id),
        ("period", f"{first} .. {last} ({cfg.site.timezone})"),
        ("tariff", cfg.tariff.id),
        ("status", selection.status()),
    ]


def date_range(
    first: datetime | None, end: datetime | None, month: str | None
) -> tuple[date, date]:
    """--from/--to, or --month as their shorthand: the local dates [first, end)."""
    if month is not None:
        if first is not None or end is not None:
            raise click.UsageError("give --month or --from/--to, not both")
        period = parse_month(month)
        return period_dates(period)
    if first is None or end is None:
        raise click.UsageError("give --from and --to (local dates), or --month YYYY-MM")
    if end <= first:
        raise click.BadParameter(f"--to {end:%Y-%m-%d} must be after --from", param_hint="--to")
    return first.date(), end.date()


@main.command()
@config_option
@click.option("--from", "first", type=local_day, help="First local date.")
@click.option("--to", "end", type=local_day, help="Local date after the last one.")
@click.option("--month", help="A local calendar month, YYYY-MM: --from/--to in one.")
@click.option("--customer", help="Only this customer's rows (id or display name).")
@click.option("--machine", help="Only this machine's rows.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="Default: by --output.")
@click.option("--output", type=click.Path(path_type=Path), help="Default: stdout.")
@force_option
@click.option(
    "--by",
    type=click.Choice(BY),
    default="job",
    show_default=True,
    help="CSV: one line per row, or sums per customer, machine or order (XLSX has them all).",
)
@click.option(
    "--dialect",
    type=click.Choice(DIALECTS),
    default="plain",
    show_default=True,
    help="CSV: excel-eu is ';', decimal comma and a UTF-8 BOM (Excel in Europe).",
)
@click.option(
    "--view",
    "view_name",
    type=click.Choice(["rows", "prepaid"]),
    default="rows",
    show_default=True,
    help="prepaid: members' deferred revenue for --month (docs/members.md).",
)
def export(
    config_path: Path,
    first: datetime | None,
    end: datetime | None,
    month: str | None,
    customer: str | None,
    machine: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
    by: str,
    dialect: Dialect,
    view_name: str,
) -> None:
    """Export the rows of the local dates [--from, --to) (or --month) for the accountant."""
    if view_name == "prepaid":
        if month is None:
            raise click.UsageError("--view prepaid needs --month YYYY-MM")
        from gateway.members_cli import prepaid_view  # members: only when asked for

        prepaid_view(load_config(config_path), month, output, force)
        return
    lo, hi = date_range(first, end, month)
    fmt = output_format(fmt, output)
    cfg = load_config(config_path)
    if output:  # refused before the ledger is read, not after
        check_target(output, cfg.own_files, force, "--output")
    ledger = Ledger(cfg)
    if machine is not None:
        ledger.machine(machine)
    who = ledger.customer(customer).id if customer is not None else None
    selection = ledger.select(lo, hi).only(customer=who, machine=machine)
    charges = ledger.charges(lo, hi)
    # The XLSX always holds every view (rows, by machine, customer, order): --by is for CSV.
    view = cast(By, "job" if fmt == "xlsx" else by)
    table = build_table(selection, cfg.site.tz, cfg.site.currency, view, charges)
    title = export_title(cfg, selection, lo, hi)
    write_table(table, fmt, output, cfg.own_files, force, dialect, title)
    if selection.open_jobs:
        click.echo(
            f"note: {selection.open_jobs} job(s) still running at the end of the data are "
            "not exported; they belong to the period in which they end",
            err=True,
        )
    if output:
        click.echo(f"wrote {output}", err=True)


def _agreed(question: str) -> bool:
    """Yes to a question on the terminal; no, end of input or Ctrl-C is no."""
    try:
        return click.confirm(question)
    except click.Abort:
        return False


@main.command()
@config_option
@click.option("--month", required=True, help="The month to close, YYYY-MM (local calendar).")
@click.option("--yes", is_flag=True, help="Close even with jobs that have no customer.")
def close(config_path: Path, month: str, yes: bool) -> None:
    """Freeze a month: its rows never change; later changes become adjustment rows."""
    from gateway.billing_cli import jobs_text, unassigned_jobs

    cfg = load_config(config_path)
    ledger = Ledger(cfg)
    period = parse_month(month)
    unassigned = unassigned_jobs(ledger, period)
    if unassigned:
        click.echo(f"{len(unassigned)} job(s) of {period} have no customer:")
        click.echo(jobs_text(unassigned, cfg))
        if not yes and not _agreed("close the month with them as they are?"):
            click.echo(
                f"{period} not closed: assign them (`shopwatt job assign JOB --customer C`) and "
                "close again, or close with --yes",
                err=True,
            )
            raise SystemExit(1)  # declined: nothing changed; 1 as click gives an aborted prompt
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
@config_option
@click.option("--month", required=True, help="The month, YYYY-MM (local calendar).")
def bill(config_path: Path, month: str) -> None:
    """The month as the utility bills it: kWh per band, demand peak and charge, fixed, VAT."""
    cfg = load_config(config_path)
    click.echo(bill_text(Ledger(cfg).bill(parse_month(month)), cfg.site.tz))


@main.command()
@config_option
@click.option("--all", "everything", is_flag=True, help="Every machine, not only changed ones.")
def recompute(config_path: Path, everything: bool) -> None:
    """Recompute after a shop.toml change (tariff, machine settings, time zone)."""
    cfg = load_config(config_path)
    ledger = Ledger(cfg)
    recomputed = ledger.recompute(everything)
    publish(ledger, recomputed)
    for machine, (first, last) in recomputed.items():
        click.echo(f"recomputed {machine}: {first} .. {last}")
    if not recomputed:
        click.echo("nothing to recompute: every machine matches shop.toml (use --all to force)")


@main.group()
def prices() -> None:
    """Price series for [tariff.spot] and carbon-intensity series (docs/tariffs.md)."""


@prices.command("import")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--series", required=True, help="The series name a [tariff.spot] or co2_series refers to."
)
@click.option("--format", "fmt", type=click.Choice(PRICE_FORMATS), default="plain")
@click.option(
    "--minutes",
    type=click.Choice(["15", "60"]),
    default="60",
    show_default=True,
    help="plain: the length of each slot.",
)
def prices_import(config_path: Path, file: Path, series: str, fmt: str, minutes: str) -> None:
    """Import a price file into the ledger and recompute the days it prices."""
    cfg = load_config(config_path)
    parsed = read_prices(file, cast(PriceFormat, fmt), cfg.site.tz, int(minutes))
    ledger = Ledger(cfg)
    done = ledger.import_prices(series, parsed.slots, file, parsed.sha256)
    if done.recomputed:
        # The days' `energy` points are rewritten too: their cost has the new prices.
        publish(ledger, done.recomputed, ledger.stored(done.recomputed))
    first, end = (
        f"{local_time(t, cfg.site.tz):%Y-%m-%d %H:%M%z}" for t in (done.first_ms, done.end_ms)
    )
    click.echo(
        f"imported {done.slots} slots of {series} from {first} to {end} "
        f"({done.replaced} stored slots replaced)"
    )
    for machine, (a, b) in done.recomputed.items():
        click.echo(f"recomputed {machine}: {a} .. {b}")
    if series not in spot_series(cfg.tariff) + co2_series(cfg.tariff):
        click.echo(
            f"note: no [tariff.spot] or co2_series in {cfg.source} uses series {series!r}",
            err=True,
        )
    if done.adjustments:
        click.echo(f"{done.adjustments} adjustment rows pending for closed months")


@main.group()
def readings() -> None:
    """Readings already in the ledger."""


@readings.command("drop")
@config_option
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
    click.echo(_dropped_text(shown, cfg, preview=True))
    if not yes and not _agreed("drop them?"):
        click.echo("nothing dropped", err=True)
        raise SystemExit(1)
    dropped = ledger.drop_readings(machine, lo, hi, expect=shown.sha256)
    if dropped.recomputed:
        publish(ledger, {machine: dropped.recomputed})
    click.echo(_dropped_text(dropped, cfg, preview=False))


def _dropped_text(d: Dropped, cfg: ShopConfig, preview: bool) -> str:
    assert d.first_ms is not None and d.last_ms is not None
    first, last = (
        f"{local_time(t, cfg.site.tz):%Y-%m-%d %H:%M:%S%z}" for t in (d.first_ms, d.last_ms)
    )
    # The preview is computed in a transaction that is rolled back: it must read as a plan,
    # or a user who answers "n" is told the days were already recomputed.
    drop, recompute, pending = (
        ("would drop", "would recompute", "would be pending")
        if preview
        else ("dropped", "recomputed", "pending")
    )
    lines = [
        f"{drop} {d.readings:,} readings of {d.machine} from {first} to {last}, "
        f"{d.metered_wh / 1000:.3f} kWh metered with them (sha256 {d.sha256})"
    ]
    if d.recomputed:
        lines.append(f"{recompute} {d.machine}: {d.recomputed[0]} .. {d.recomputed[1]}")
    if d.adjustments:
        lines.append(f"{d.adjustments} adjustment rows {pending} for closed months")
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
                "current" if m.config_current else _changed(m.changed_from),
            ]
        )
    lines.append(columns(rows))
    lines.append(
        "dup: duplicate rows in a file; again: rows already in the ledger; diff: of those, "
        "rows with other values (first kept); resets/jumps/gaps: counter repairs and "
        "intervals with unknown energy"
    )
    closed = ", ".join(f"{p} ({at} by {who})" for p, (at, who) in status.closed.items())
    lines.append(f"closed months: {closed or 'none'}")
    lines.append(f"pending adjustment rows: {status.pending_adjustments}")
    lines.append("tariff versions (local days of the rows each priced):")
    froms = ["the beginning", *(v.valid_from.isoformat() for v in cfg.tariff.version)]
    for vid, valid in zip(cfg.tariff.version_ids, froms, strict=True):
        priced = " .. ".join(status.tariff_versions.get(vid, [])) or "no rows"
        lines.append(f"  {vid}: valid from {valid}; priced {priced}")
    lines += [f"to check: {line}" for line in status.unsettled]
    lines.append("recent changes:")
    lines += [f"  {e.at} {e.who} {e.action} {_brief(e.detail)}" for e in status.audit]
    return "\n".join(lines)


def _changed(day: date | None) -> str:
    since = "" if day is None or day == date.min else f" from {day}"
    return f"CHANGED{since}: run recompute"


def _brief(detail: dict[str, Any]) -> str:
    """One audit entry's details on one line, the files, rows and machines first."""
    if "added" in detail and "input" in detail:  # replay
        given = (detail["input"], detail.get("jobs_file"))
        files = [f"{f['path']} (sha256 {f['sha256'][:12]})" for f in given if f]
        return f"{', '.join(files)}: +{detail['added']} readings, {detail['jobs']} jobs"
    if "slots" in detail and "input" in detail:  # prices import
        file, sha = detail["input"]["path"], detail["input"]["sha256"][:12]
        return f"{detail['series']}: {detail['slots']} slots from {file} (sha256 {sha})"
    if "period" in detail:
        return f"{detail['period']}: {detail['rows']} rows frozen"
    if "sha256" in detail:
        return (
            f"{detail['machine']}: -{detail['readings']} readings, "
            f"{detail['metered_wh'] / 1000:.3f} kWh (sha256 {detail['sha256'][:12]})"
        )
    if "machines" in detail and "reason" in detail:  # recompute
        return f"{', '.join(detail['machines']) or 'nothing'} ({detail['reason']})"
    # Customers, assignments, job events, members, users, live ingest: every field, briefly.
    return ", ".join(f"{k} {v}" for k, v in detail.items() if v not in ("", None, False, {}))


@main.command()
@config_option
def status(config_path: Path) -> None:
    """Readings per machine, what was dropped or repaired, closed months, recent changes."""
    cfg = load_config(config_path)
    click.echo(_status_text(Ledger(cfg).status(), cfg))
    from gateway.members_cli import alerts_text  # members: loaded with their command

    members = alerts_text(cfg)
    if members:
        click.echo(members)


@main.command()
@config_option
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
