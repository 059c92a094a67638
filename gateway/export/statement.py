"""A customer's statement for a month: the invoice basis (each job, net, VAT, gross).

Without `internal`, nothing of the shop's own costs: date, machine, job, order, the hours
the price is based on, parts and price. With it, energy, total cost, cost per part and
margin too. A job of a closed month reassigned later appears in the month its
adjustment rows land in, with the month it corrects.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.config import ShopConfig
from gateway.engine.pricing import vat_cents
from gateway.export.table import Cell, Table, margin_of, per_part
from gateway.ledger import Selection
from gateway.ledger.customers import Customer
from gateway.ledger.rows import LedgerRow
from gateway.ledger.units import hours, kwh, money

HEADER = ("date", "machine", "job_id", "order", "hours", "parts", "price", "corrects")
INTERNAL = ("energy_kwh", "total_cost", "cost_per_part", "margin")


@dataclass(frozen=True, slots=True)
class Statement:
    """The title block, the job lines with net, VAT and gross at the end, and the sums."""

    title: list[tuple[str, str]]
    table: Table
    net_cents: int
    vat_cents: int


def _hours(row: LedgerRow, cfg: ShopConfig, price_list: str) -> Decimal:
    """The hours the price is based on (job hours where no price list says otherwise)."""
    rule = cfg.pricing.rule(price_list, row.machine)
    basis = rule.hours if rule is not None else "job_hours"
    return hours(row.amounts.run_s if basis == "run_hours" else row.amounts.duration_s)


def _line(row: LedgerRow, cfg: ShopConfig, who: Customer, internal: bool) -> list[Cell]:
    a = row.amounts
    price: Cell = "" if a.price_cents is None else money(a.price_cents)
    line: list[Cell] = [
        row.day.isoformat(),
        row.machine,
        row.job_id,
        row.order,
        _hours(row, cfg, who.price_list),
        Decimal(a.parts),
        price,
        row.origin_period,
    ]
    if internal:
        total = money(a.total_cents)
        energy = sum((kwh(wh) for wh in a.band_wh.values()), Decimal("0.000"))
        cost = per_part("cost_per_part", total, Decimal(a.parts))
        line += [energy, total, cost, margin_of(price, total)]
    return line


def build_statement(
    selection: Selection, who: Customer, period: str, cfg: ShopConfig, internal: bool
) -> Statement:
    """The statement of one customer's jobs in the selection (one month)."""
    jobs = [r for r in selection.rows if r.customer == who.id and r.job_id]
    header = [*HEADER, *(INTERNAL if internal else ())]
    lines = [_line(r, cfg, who, internal) for r in jobs]
    net = sum(r.amounts.price_cents or 0 for r in jobs)
    vat = vat_cents(net, cfg.pricing.vat_rate)
    k = header.index("price")
    rate = Decimal(repr(cfg.pricing.vat_rate * 100)).normalize()
    for label, cents in (("net", net), (f"VAT {rate:f} %", vat), ("gross", net + vat)):
        total: list[Cell] = [""] * len(header)
        total[0], total[k] = label, money(cents)
        lines.append(total)
    title = [
        (f"Statement {who.name}", ""),
        ("customer", who.id),
        ("VAT id", who.vat_id or "-"),
        ("period", f"{period} ({cfg.site.timezone})"),
        ("site", cfg.site.id),
        ("currency", cfg.site.currency),
        ("status", selection.status()),
    ]
    return Statement(title, Table(header, lines, cfg.site.currency), net, vat)
