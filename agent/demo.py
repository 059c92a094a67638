"""`python -m agent demo` (also `shopwatt demo` with the agent installed): a simulated shop
day through the gateway's own replay -> engine -> ledger -> export, no servers.

The plan's customers go into the ledger first; the booked machines' jobs.csv names them;
the detected jobs get theirs after the fact (`shopwatt job assign`), the way an owner
sorts out the day's detected jobs. Then the export, the sums per customer, and a
statement per customer of the month. The plan's members buy their prepaid hours on the
first of the month; the demo prints the month's deferred revenue and writes a prepaid
statement per member.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import click

from agent.shopday import DEMO_HEADER, ShopDay, simulate_shop_day
from agent.shopplan import load_plan
from gateway.cli import replay_files, replay_summary, write_table
from gateway.config import load_config
from gateway.engine.drawdown import Subscription
from gateway.engine.localtime import period_of
from gateway.errors import LedgerError, OutputError
from gateway.export import Table, build_table
from gateway.export.prepaid import statement_table
from gateway.export.statement import build_statement
from gateway.export.table import group
from gateway.export.to_bill import bill_text
from gateway.export.to_text import render_text
from gateway.export.to_xlsx import write_statement_xlsx
from gateway.inputs.prices import read_prices
from gateway.ledger import Ledger
from gateway.ledger.assignments import Assignment, covering
from gateway.ledger.customers import Customer
from gateway.ledger.members import Member
from gateway.ledger.membership import MemberLedger
from gateway.members_cli import prepaid_view, write_view
from gateway.outfile import check_target, output_file
from gateway.web.render import report_html


def add_customers(ledger: Ledger) -> None:
    """The plan's customers, those the ledger does not know yet (a second run adds none)."""
    for c in load_plan().customer:
        try:
            ledger.customer(c.id)
        except LedgerError:
            ledger.customer_add(Customer(c.id, c.name, c.vat_id, c.price_list, c.internal))


def add_members(ledger: MemberLedger, day: date) -> None:
    """The plan's members and what they bought on the first of `day`'s month (once)."""
    known = {m.id for m in ledger.member_list()}
    first = day.replace(day=1)
    for m in load_plan().member:
        if m.id in known:
            continue
        weights = {k: _exact(w) for k, w in m.weights.items()}
        ledger.member_add(Member(m.id, "", "", m.hours, weights))
        for b in m.block:
            until = first + timedelta(days=b.valid_days - 1)
            ledger.topup(m.id, _exact(b.hours), _cents(b.price), first, until)
        if m.subscription is not None:
            s = m.subscription
            plan = Subscription("", "", 0, _cents(s.price), period_of(first), carry=s.carry_over)
            cap = None if s.cap is None else _exact(s.cap)
            ledger.subscribe(m.id, plan, _exact(s.hours), cap)


def _exact(x: float) -> Decimal:
    """A plan's number as the decimal its author wrote."""
    return Decimal(repr(x))


def _cents(x: float) -> int:
    return int(_exact(x) * 100)


def _assign_detected(ledger: Ledger, shop: ShopDay) -> int:
    """Each detected job gets the customer the simulated schedule gave it; returns how many."""
    found = ledger.jobs(shop.day, shop.day + timedelta(days=1))
    done = 0
    for machine, truth in shop.truth.items():
        if truth.explicit:
            continue
        spans = [(j.start_ms, j.end_ms, j.job_id) for j in found if j.machine == machine]
        for job in truth.jobs:
            hit = covering(spans, (job.start_ms + job.end_ms) // 2)
            if job.customer and hit is not None:
                ledger.assign(hit[2], machine, Assignment(machine, 0, hit[2], job.customer))
                done += 1
    return done


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for shop.toml, the CSV inputs, the ledger and the export (default: a temp one).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--force", is_flag=True, help="Replace the files of an earlier demo in --output.")
def demo(output: Path | None, seed: int, force: bool) -> None:
    """A simulated shop day through replay -> engine -> ledger -> export (no servers)."""
    out = output or Path(tempfile.mkdtemp(prefix="shopwatt-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    config_path, readings, jobs = out / "shop.toml", out / "readings.csv", out / "jobs.csv"
    prices, report = out / "prices.csv", out / "report.html"
    earlier = _earlier_demo_data(config_path, out / "shopwatt-data")
    for path in (config_path, readings, jobs, prices, report):  # before the simulation, not after
        check_target(path, (), force, "demo --output")
    if earlier is not None:  # an earlier demo's, and --force: its readings would mix in
        shutil.rmtree(earlier)
    click.echo(f"simulating a shop day (seed {seed}) ...", err=True)
    shop = simulate_shop_day(seed)
    with output_file(config_path, force=force, what="demo --output") as fh:
        fh.write(shop.config_toml.encode())
    shop.readings_csv(readings)
    shop.jobs_csv(jobs)
    cfg = load_config(config_path)
    shop.prices_csv(prices)
    parsed = read_prices(prices, "plain", cfg.site.tz, 15)
    ledger = MemberLedger(cfg)
    ledger.import_prices("day-ahead", parsed.slots, prices, parsed.sha256)
    add_customers(ledger)
    add_members(ledger, shop.day)
    replayed = replay_files(cfg, readings, jobs, bar=True)
    click.echo(replay_summary(replayed, readings, jobs), err=True)
    click.echo(f"assigned {_assign_detected(ledger, shop)} detected jobs", err=True)
    first, end = shop.day, shop.day + timedelta(days=1)
    selection = ledger.select(first, end)
    charges = ledger.charges(first, end)
    table = build_table(selection, cfg.site.tz, cfg.site.currency, "job", charges)
    click.echo(render_text(table))
    click.echo(f"\n{bill_text(ledger.bill(period_of(first)), cfg.site.tz)}")
    by_customer = group(table, "customer")
    name = f"costs-{first:%Y%m%d}"
    csv_path, xlsx_path = out / f"{name}.csv", out / f"{name}.xlsx"
    write_table(table, "csv", csv_path, cfg.own_files, force)
    write_table(table, "xlsx", xlsx_path, cfg.own_files, force)
    write_table(by_customer, "csv", out / f"{name}-by-customer.csv", cfg.own_files, force)
    click.echo("\n" + _per_customer(by_customer))
    period = period_of(first)
    for c in ledger.customer_list():
        shown = build_statement(selection, c, period, cfg, internal=False)
        if len(shown.table.lines) > 3:  # jobs besides net, VAT and gross
            path = out / f"statement-{c.id}-{period}.xlsx"
            with output_file(path, protected=cfg.own_files, force=force) as fh:
                write_statement_xlsx(shown, fh)
    click.echo("")
    prepaid_view(cfg, period, None)
    prepaid_view(cfg, period, out / f"prepaid-{period}.xlsx", force)
    for m in ledger.member_list():
        title, shown_member = statement_table(ledger.statement(m.id, period), cfg.site.currency)
        path = out / f"member-{m.id}-{period}.xlsx"
        write_view(shown_member, title, path, cfg.own_files, force)
    with output_file(report, protected=cfg.own_files, force=force, what="demo --output") as fh:
        fh.write(report_html(cfg, Ledger(cfg), f"{first:%Y-%m}").encode())
    click.echo(
        f"\nCSV:    {csv_path}\nXLSX:   {xlsx_path}\nstatements: {out}/statement-*.xlsx, "
        f"{out}/member-*.xlsx\n"
        f"ledger: {ledger.path}\nreport: {report} (open it in a browser)"
    )


def _per_customer(by_customer: Table) -> str:
    """Revenue, cost and margin per customer, as the demo prints them."""
    idx = [by_customer.header.index(n) for n in ("customer", "rows", "price", "total_cost")]
    idx.append(by_customer.header.index("margin"))
    grid = [["customer", "rows", "revenue", "cost", "margin"]]
    grid += [[str(line[k]) for k in idx] for line in by_customer.lines]
    widths = [max(len(r[k]) for r in grid) for k in range(len(idx))]
    return "\n".join(
        "  ".join(
            v.ljust(w) if k == 0 else v.rjust(w)
            for k, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in grid
    )


def _earlier_demo_data(config_path: Path, data: Path) -> Path | None:
    """The data folder of an earlier demo in --output; a real shop's folder is refused.

    Replaying into the last demo's ledger would keep its readings (the same day and times)
    over the new ones: a rerun with another seed would export a mix of both days.
    """
    if config_path.exists() and not config_path.read_text(errors="replace").startswith(DEMO_HEADER):
        raise OutputError(
            f"demo --output {config_path}: not a demo's shop.toml; the demo never replaces a "
            "shop's own files, not even with --force (pick an empty folder)"
        )
    if not data.exists():
        return None
    if not config_path.exists():
        raise OutputError(
            f"demo --output {data}: exists, but no demo's shop.toml names it; the demo "
            "never writes into a ledger it did not make (pick an empty folder)"
        )
    return data
