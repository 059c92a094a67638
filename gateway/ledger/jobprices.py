"""Job rows priced by shop.toml's [pricing] for the customer they were for (what the
customer pays; prices.py is what the utility charges)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from gateway.config import Pricing
from gateway.engine.pricing import price_cents
from gateway.ledger import customers
from gateway.ledger.rows import LedgerRow
from gateway.ledger.units import hours


def priced(conn: sqlite3.Connection, pricing: Pricing, rows: list[LedgerRow]) -> list[LedgerRow]:
    """Rows with each job of a known customer priced by the customer's price list.

    No price (None) for overhead, for jobs without a customer, for the shop's own product
    lines (internal) and where neither the list nor [pricing.machine] has the machine.
    """
    known = {c.id: c for c in customers.listed(conn)}
    out = []
    for row in rows:
        who = known.get(row.customer) if row.kind == "job" else None
        rule = pricing.rule(who.price_list, row.machine) if who and not who.internal else None
        if rule is not None:
            a = row.amounts
            cents = price_cents(rule, hours(a.run_s), hours(a.duration_s), a.energy_cents)
            row = replace(row, amounts=replace(a, price_cents=cents))
        out.append(row)
    return out
