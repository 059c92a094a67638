"""`python -m agent demo` (also `shopwatt demo` with the agent installed): a simulated shop
day through the gateway's own replay -> engine -> ledger -> export, no servers."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import click

from agent.shopday import simulate_shop_day
from gateway.cli import replay_files, replay_summary, write_table
from gateway.config import load_config
from gateway.export import build_table
from gateway.export.to_text import render_text
from gateway.ledger import Ledger


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for shop.toml, the CSV inputs, the ledger and the export (default: a temp one).",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(output: Path | None, seed: int) -> None:
    """A simulated shop day through replay -> engine -> ledger -> export (no servers)."""
    out = output or Path(tempfile.mkdtemp(prefix="shopwatt-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    click.echo(f"simulating a shop day (seed {seed}) ...", err=True)
    shop = simulate_shop_day(seed)
    config_path, readings, jobs = out / "shop.toml", out / "readings.csv", out / "jobs.csv"
    config_path.write_text(shop.config_toml, encoding="utf-8")
    shop.readings_csv(readings)
    shop.jobs_csv(jobs)
    cfg = load_config(config_path)
    # The simulated schedule names its customers: the demo's shop knows them all.
    replayed = replay_files(cfg, readings, jobs, bar=True, create_customers=True)
    click.echo(replay_summary(replayed, readings, jobs), err=True)
    first, end = shop.day, shop.day + timedelta(days=1)
    table = build_table(Ledger(cfg).select(first, end), cfg.site.tz, cfg.site.currency)
    click.echo(render_text(table))
    name = f"costs-{first:%Y%m%d}"
    csv_path, xlsx_path = out / f"{name}.csv", out / f"{name}.xlsx"
    write_table(table, "csv", csv_path)
    write_table(table, "xlsx", xlsx_path)
    click.echo(f"\nCSV:    {csv_path}\nXLSX:   {xlsx_path}\nledger: {Ledger(cfg).path}")
