"""`python -m agent demo` (also `shopwatt demo` with the agent installed): a simulated shop
day through the gateway's own replay -> engine -> ledger -> export, no servers."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import click

from agent.shopday import DEMO_HEADER, simulate_shop_day
from gateway.cli import replay_files, replay_summary, write_table
from gateway.config import load_config
from gateway.engine.localtime import period_of
from gateway.errors import OutputError
from gateway.export import build_table
from gateway.export.to_bill import bill_text
from gateway.export.to_text import render_text
from gateway.inputs.prices import read_prices
from gateway.ledger import Ledger
from gateway.outfile import check_target, output_file
from gateway.web.render import report_html


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
    Ledger(cfg).import_prices("day-ahead", parsed.slots, prices, parsed.sha256)
    replayed = replay_files(cfg, readings, jobs, bar=True)
    click.echo(replay_summary(replayed, readings, jobs), err=True)
    first, end = shop.day, shop.day + timedelta(days=1)
    ledger = Ledger(cfg)
    charges = ledger.charges(first, end)
    table = build_table(ledger.select(first, end), cfg.site.tz, cfg.site.currency, "job", charges)
    click.echo(render_text(table))
    click.echo(f"\n{bill_text(ledger.bill(period_of(first)), cfg.site.tz)}")
    name = f"costs-{first:%Y%m%d}"
    csv_path, xlsx_path = out / f"{name}.csv", out / f"{name}.xlsx"
    write_table(table, "csv", csv_path, cfg.own_files, force)
    write_table(table, "xlsx", xlsx_path, cfg.own_files, force)
    with output_file(report, protected=cfg.own_files, force=force, what="demo --output") as fh:
        fh.write(report_html(cfg, Ledger(cfg), f"{first:%Y-%m}").encode())
    click.echo(
        f"\nCSV:    {csv_path}\nXLSX:   {xlsx_path}\nledger: {Ledger(cfg).path}\n"
        f"report: {report} (open it in a browser)"
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
