"""`shopwatt customer ...`, `shopwatt job ...`, `shopwatt jobs`: who the shop's jobs are for
and what they made (docs/accounting.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from gateway.cligroup import config_option
from gateway.clock import now_ms
from gateway.config import ShopConfig, load_config
from gateway.engine.localtime import FIRST_MS, LAST_MS, local_time, period_dates
from gateway.export.to_csv import write_csv_binary
from gateway.export.to_text import columns
from gateway.ledger import Ledger
from gateway.ledger.assignments import Assignment
from gateway.ledger.customers import Customer
from gateway.ledger.periods import parse_month
from gateway.ledger.rows import LedgerRow
from gateway.ledger.units import hours, kwh, money
from gateway.outfile import check_target, output_file


@click.command("add")
@config_option
@click.argument("customer_id")
@click.option("--name", default="", help="Display name (default: the id).")
@click.option("--vat-id", default="", help="The customer's VAT id, printed on statements.")
@click.option("--price-list", default="", help="A [pricing.lists.NAME] of shop.toml.")
@click.option("--internal", is_flag=True, help="One of the shop's own product lines.")
def customer_add(
    config_path: Path, customer_id: str, name: str, vat_id: str, price_list: str, internal: bool
) -> None:
    """Add a customer (an id such as acme, and a display name)."""
    ledger = Ledger(load_config(config_path))
    added = ledger.customer_add(Customer(customer_id, name, vat_id.strip(), price_list, internal))
    click.echo(f"added customer {added.id} ({added.name})")


@click.command("list")
@config_option
def customer_list(config_path: Path) -> None:
    """Every customer: id, name, VAT id, price list, internal, merged into."""
    found = Ledger(load_config(config_path)).customer_list()
    head = ["id", "name", "vat_id", "price_list", "internal", "merged_into"]
    table = [head] + [
        [c.id, c.name, c.vat_id, c.price_list, "yes" if c.internal else "", c.merged_into]
        for c in found
    ]
    click.echo(columns(table))


@click.command("rename")
@config_option
@click.argument("customer")
@click.option("--name", required=True, help="The new display name.")
def customer_rename(config_path: Path, customer: str, name: str) -> None:
    """Give a customer a new display name (its id stays)."""
    now = Ledger(load_config(config_path)).customer_rename(customer, name)
    click.echo(f"customer {now.id} is now {now.name}")


@click.command("merge")
@config_option
@click.argument("customer")
@click.option("--into", required=True, help="The customer that keeps the jobs.")
def customer_merge(config_path: Path, customer: str, into: str) -> None:
    """Merge a customer into another (a duplicate): its jobs and rows move over."""
    moved = Ledger(load_config(config_path)).customer_merge(customer, into)
    click.echo(f"merged {customer} into {into}: {moved} rows moved")


_count = click.IntRange(min=0)
INSTANT_HELP = "ISO 8601 with a UTC offset or Z, e.g. 2026-11-03T08:00:00+01:00"


def instant(_ctx: click.Context, param: click.Parameter, text: str | None) -> int | None:
    """click callback: an ISO 8601 time with offset -> UTC ms (a bad one names the option)."""
    if text is None:
        return None
    from gateway.inputs.csvfile import parse_time_ms  # the parser: not for `shopwatt run`

    try:
        t_ms = parse_time_ms(text)
    except ValueError as err:
        raise click.BadParameter(f"{text!r}: {err}", param=param) from None
    if not FIRST_MS <= t_ms <= LAST_MS:  # an offset can carry year 1 or 9999 past UTC's
        edge = "before 0001-01-01" if t_ms < FIRST_MS else "after 9999-12-31"
        raise click.BadParameter(f"{text!r}: {edge} in UTC", param=param)
    return t_ms


def _job_line(job: LedgerRow, cfg: ShopConfig) -> list[str]:
    a = job.amounts
    return [
        job.job_id,
        job.machine,
        f"{local_time(job.start_ms, cfg.site.tz):%Y-%m-%d %H:%M}",
        f"{local_time(job.end_ms, cfg.site.tz):%Y-%m-%d %H:%M}",
        str(hours(a.duration_s)),
        str(kwh(a.energy_wh)),
        str(money(a.total_cents)),
        job.customer or "(unassigned)",
        job.order,
        str(a.parts or ""),
        str(a.scrap or ""),
        "open" if job.open else "",
    ]


JOB_HEAD = ["job", "machine", "start", "end", "hours", "kWh", "cost", "customer", "order"]
JOB_HEAD += ["parts", "scrap", ""]


def _adjusted(count: int) -> str:
    if not count:
        return ""
    return f"\n{count} adjustment rows pending for closed months (the job was in one)"


@click.command("assign")
@config_option
@click.argument("job_id")
@click.option("--machine", help="Needed only when two machines have a job of that id.")
@click.option("--customer", required=True, help="Customer id or display name.")
@click.option("--order", default="", help="The customer's order number.")
@click.option("--parts", type=_count, default=0, help="Good parts made.")
@click.option("--scrap", type=_count, default=0, help="Parts made and thrown away.")
def job_assign(
    config_path: Path,
    job_id: str,
    machine: str | None,
    customer: str,
    order: str,
    parts: int,
    scrap: int,
) -> None:
    """Say who a job was for, after the fact (detected or explicit jobs)."""
    cfg = load_config(config_path)
    said = Assignment("", 0, job_id, customer, order.strip(), parts, scrap)
    job, adjustments = Ledger(cfg).assign(job_id, machine, said)
    click.echo(columns([JOB_HEAD, _job_line(job, cfg)]) + _adjusted(adjustments))


@click.command("split")
@config_option
@click.argument("job_id")
@click.option("--machine", help="Needed only when two machines have a job of that id.")
@click.option("--at", "at_ms", required=True, callback=instant, help=f"Where: {INSTANT_HELP}.")
def job_split(config_path: Path, job_id: str, machine: str | None, at_ms: int) -> None:
    """Cut a job in two at an instant (a detected job that was two orders)."""
    cfg = load_config(config_path)
    second, adjustments = Ledger(cfg).split(job_id, machine, at_ms)
    click.echo(
        f"split {job_id}; the part from the cut on is {second.job_id}" + _adjusted(adjustments)
    )


@click.command("start")
@config_option
@click.option("--machine", required=True, help="The machine the job runs on.")
@click.option("--job", "job_id", help="The job's id (default: <machine>-<local date-time>).")
@click.option("--customer", required=True, help="Customer id or display name.")
@click.option("--order", default="", help="The customer's order number.")
def job_start(
    config_path: Path, machine: str, job_id: str | None, customer: str, order: str
) -> None:
    """Start a job now, as the machine's job button does (a job event to the gateway)."""
    from gateway.inputs.jobsend import start_job  # paho: only when a job is sent

    cfg = load_config(config_path)
    t = now_ms()
    job_id, who = start_job(Ledger(cfg), machine, job_id, customer, order, "cli", t)
    click.echo(f"started {job_id} on {machine} for {who} at {local_time(t, cfg.site.tz):%H:%M:%S}")


@click.command("stop")
@config_option
@click.option("--machine", required=True, help="The machine the job runs on.")
@click.option("--job", "job_id", help="Default: the machine's running job.")
@click.option("--parts", type=_count, default=0, help="Good parts made.")
@click.option("--scrap", type=_count, default=0, help="Parts made and thrown away.")
def job_stop(config_path: Path, machine: str, job_id: str | None, parts: int, scrap: int) -> None:
    """Stop a job now, as the machine's job button does, with the parts it made."""
    from gateway.inputs.jobsend import stop_job  # paho: only when a job is sent

    cfg = load_config(config_path)
    t = now_ms()
    job_id = stop_job(Ledger(cfg), machine, job_id, parts, scrap, "cli", t)
    click.echo(f"stopped {job_id} on {machine} at {local_time(t, cfg.site.tz):%H:%M:%S}")


@click.group("job")
def job() -> None:
    """One job: start and stop it, who it was for, what it made, where it splits."""


for _command in (job_start, job_stop, job_assign, job_split):
    job.add_command(_command)


# A local date option (--from, --to, --on, ...), for every command that takes one.
local_day = click.DateTime(formats=["%Y-%m-%d"])


@click.command("jobs")
@config_option
@click.option("--from", "first", type=local_day, required=True, help="First local date.")
@click.option("--to", "end", type=local_day, required=True, help="Local date after the last one.")
@click.option("--unassigned", is_flag=True, help="Only jobs with no customer.")
def jobs(config_path: Path, first: datetime, end: datetime, unassigned: bool) -> None:
    """The jobs ending on the local dates [--from, --to), with who they were for."""
    cfg = load_config(config_path)
    found = Ledger(cfg).jobs(first.date(), end.date())
    found = [j for j in found if not (unassigned and j.customer)]
    click.echo(jobs_text(found, cfg))


def unassigned_jobs(ledger: Ledger, period: str) -> list[LedgerRow]:
    """The month's finished jobs that have no customer (what `close` asks about)."""
    found = ledger.jobs(*period_dates(period))
    return [j for j in found if not j.customer and not j.open]


def jobs_text(found: list[LedgerRow], cfg: ShopConfig) -> str:
    """The jobs as `shopwatt jobs` prints them."""
    return columns([JOB_HEAD, *(_job_line(j, cfg) for j in found)])


# What every statement takes (customers' here, members' in members_cli).
month_option = click.option("--month", required=True, help="The month, YYYY-MM (local calendar).")
statement_output = click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A .xlsx or .csv file (default: a text table on stdout).",
)
force_option = click.option("--force", is_flag=True, help="Replace an existing --output file.")


@click.command("statement")
@config_option
@click.option("--customer", required=True, help="Customer id or display name.")
@month_option
@statement_output
@force_option
@click.option("--internal", is_flag=True, help="Add the shop's costs and margin per job.")
def statement(
    config_path: Path,
    customer: str,
    month: str,
    output: Path | None,
    force: bool,
    internal: bool,
) -> None:
    """A customer's invoice basis for a month: each job, net, VAT, gross."""
    from gateway.export.statement import build_statement

    cfg = load_config(config_path)
    suffix = output.suffix.lower() if output else ""
    if output is not None:  # refused before the ledger is read, not after
        if suffix not in (".xlsx", ".csv"):
            raise click.BadParameter(f"{output}: give a .xlsx or .csv file", param_hint="--output")
        check_target(output, cfg.own_files, force, "--output")
    ledger = Ledger(cfg)
    period = parse_month(month)
    who = ledger.customer(customer)
    selection = ledger.select(*period_dates(period))
    shown = build_statement(selection, who, period, cfg, internal)
    if output is None:
        title = [f"{label}: {value}" if value else label for label, value in shown.title]
        table = [shown.table.header, *([str(v) for v in line] for line in shown.table.lines)]
        click.echo("\n".join([*title, "", columns(table)]))
        return
    with output_file(output, protected=cfg.own_files, force=force) as fh:
        if suffix == ".xlsx":
            from gateway.export.to_xlsx import write_statement_xlsx  # openpyxl: only for XLSX

            write_statement_xlsx(shown, fh)
        else:
            write_csv_binary(shown.table, fh)
    click.echo(f"wrote {output}", err=True)


@click.group("customer")
def customer() -> None:
    """Customers and the shop's own product lines."""


for _command in (customer_add, customer_list, customer_rename, customer_merge):
    customer.add_command(_command)
