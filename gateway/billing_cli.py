"""`shopwatt customer ...`: who the shop's jobs are for (docs/accounting.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from gateway.config import load_config
from gateway.ledger import Ledger
from gateway.ledger.customers import Customer

ConfigOption = Callable[[click.Command], click.Command]


@click.command("add")
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
def customer_list(config_path: Path) -> None:
    """Every customer: id, name, VAT id, price list, internal, merged into."""
    found = Ledger(load_config(config_path)).customer_list()
    head = ["id", "name", "vat_id", "price_list", "internal", "merged_into"]
    table = [head] + [
        [c.id, c.name, c.vat_id, c.price_list, "yes" if c.internal else "", c.merged_into]
        for c in found
    ]
    widths = [max(len(r[k]) for r in table) for k in range(len(head))]
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


@click.command("rename")
@click.argument("customer")
@click.option("--name", required=True, help="The new display name.")
def customer_rename(config_path: Path, customer: str, name: str) -> None:
    """Give a customer a new display name (its id stays)."""
    now = Ledger(load_config(config_path)).customer_rename(customer, name)
    click.echo(f"customer {now.id} is now {now.name}")


@click.command("merge")
@click.argument("customer")
@click.option("--into", required=True, help="The customer that keeps the jobs.")
def customer_merge(config_path: Path, customer: str, into: str) -> None:
    """Merge a customer into another (a duplicate): its jobs and rows move over."""
    moved = Ledger(load_config(config_path)).customer_merge(customer, into)
    click.echo(f"merged {customer} into {into}: {moved} rows moved")


def customer_group(config_option: ConfigOption) -> click.Group:
    """The `customer` group, each command taking the CLI's own --config option."""
    group = click.Group("customer", help="Customers and the shop's own product lines.")
    for command in (customer_add, customer_list, customer_rename, customer_merge):
        group.add_command(config_option(command))
    return group
