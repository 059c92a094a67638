"""Customers and the shop's own product lines, as data in the ledger (`shopwatt customer`).

A customer has an id (what rows and jobs carry), a display name, an optional VAT id, an
optional price list and `internal` for the shop's own product lines. Input names a
customer by id or display name, case- and space-insensitively ("acme  gmbh" is "ACME
GmbH"); a name nobody knows is refused with the closest known ones, never taken as a new
customer by a typo. Every change goes to the audit trail (the caller's transaction).
"""

from __future__ import annotations

import difflib
import sqlite3
from dataclasses import dataclass

from gateway.errors import LedgerError


@dataclass(frozen=True, slots=True)
class Customer:
    """One customer (or, internal, one of the shop's own product lines)."""

    id: str
    name: str
    vat_id: str = ""
    price_list: str = ""
    internal: bool = False
    merged_into: str = ""  # a merged customer: the one its jobs now belong to


def fold(text: str) -> str:
    """The form names are compared in: case-folded, runs of white space as one space."""
    return " ".join(text.split()).casefold()


def _from_sql(v: sqlite3.Row) -> Customer:
    return Customer(
        v["id"], v["name"], v["vat_id"], v["price_list"], bool(v["internal"]), v["merged_into"]
    )


def listed(conn: sqlite3.Connection, *, merged: bool = False) -> list[Customer]:
    """Every customer by id (merged ones only when asked)."""
    where = "1" if merged else "merged_into = ''"
    found = conn.execute(f"SELECT * FROM customers WHERE {where} ORDER BY id")
    return [_from_sql(v) for v in found]


def find(conn: sqlite3.Connection, text: str) -> Customer | None:
    """The customer that `text` names (id or display name, folded); merged ones resolve to
    the customer they were merged into."""
    key = fold(text)
    if not key:
        return None
    everyone = listed(conn, merged=True)
    hit = next((c for c in everyone if fold(c.id) == key), None)
    hit = hit or next((c for c in everyone if not c.merged_into and fold(c.name) == key), None)
    while hit is not None and hit.merged_into:
        hit = next((c for c in everyone if c.id == hit.merged_into), None)
    return hit


def id_of(conn: sqlite3.Connection, text: str) -> str:
    """The id of the customer `text` names; `text` itself when nobody has that name."""
    hit = find(conn, text) if text else None
    return hit.id if hit else text


def strangers(conn: sqlite3.Connection) -> list[str]:
    """Jobs whose customer is no known customer (a job event's name nobody added): one line
    each, for `shopwatt status`."""
    known = {c.id for c in listed(conn, merged=True)}
    found = conn.execute(
        "SELECT machine, job_id, customer FROM rows WHERE kind = 'job' AND customer != '' "
        "ORDER BY start_ms"
    )
    return [
        f"{r['machine']}: job {r['job_id']} names customer {r['customer']!r}, which is not "
        f"known (closest: {', '.join(closest(conn, r['customer'])) or 'none'}); add it or "
        "assign the job"
        for r in found
        if r["customer"] not in known
    ]


def closest(conn: sqlite3.Connection, text: str, n: int = 3) -> list[str]:
    """Ids of the customers whose id or name is most like `text` (for error messages)."""
    names: dict[str, str] = {}
    for c in listed(conn):
        names.setdefault(fold(c.id), c.id)
        names.setdefault(fold(c.name), c.id)
    near = difflib.get_close_matches(fold(text), names, n=n * 2, cutoff=0.5)
    return list(dict.fromkeys(names[k] for k in near))[:n]


def unknown(
    conn: sqlite3.Connection, text: str, where: str, *, creatable: bool = True
) -> LedgerError:
    """The error for a name no customer has: where it came from and the closest ids (the
    known ones when none is close); `creatable`: the input (a jobs.csv) may add it."""
    if not fold(text):
        return LedgerError(f"{where} = {text!r}: give a customer's id or display name")
    near = closest(conn, text)
    everyone = [c.id for c in listed(conn)]
    if near:
        hint = f"closest: {', '.join(near)}"
    elif everyone:
        more = f", ... ({len(everyone)} in all)" if len(everyone) > 8 else ""
        hint = f"known: {', '.join(everyone[:8])}{more}"
    else:
        hint = "no customers yet"
    how = "`shopwatt customer add`" + (
        ", or pass --create-customers to add the unknown ones" if creatable else ""
    )
    return LedgerError(f"{where}: customer {text!r} is not known ({hint}); add it with {how}")


def require(conn: sqlite3.Connection, text: str, where: str) -> Customer:
    """The customer `text` names, or a LedgerError naming `where` and the closest ids."""
    hit = find(conn, text)
    if hit is None:
        raise unknown(conn, text, where, creatable=False)
    return hit


def add(conn: sqlite3.Connection, customer: Customer) -> Customer:
    """Store a new customer; its id and name must not name anyone already known."""
    cid, name = customer.id.strip(), " ".join(customer.name.split()) or customer.id.strip()
    if not cid:
        raise LedgerError("customer id = '': give a short id such as acme")
    for text in {cid, name}:
        taken = find(conn, text)
        if taken is not None:
            raise LedgerError(
                f"customer {text!r} already exists as {taken.id!r} ({taken.name}); "
                "use `shopwatt customer rename` to change it"
            )
    conn.execute(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, '')",
        (cid, name, fold(name), customer.vat_id, customer.price_list, int(customer.internal)),
    )
    return Customer(cid, name, customer.vat_id, customer.price_list, customer.internal)


def rename(conn: sqlite3.Connection, text: str, name: str) -> tuple[Customer, Customer]:
    """Give a customer a new display name (its id, what rows carry, stays); (before, after)."""
    was = require(conn, text, "customer rename")
    name = " ".join(name.split())
    if not name:
        raise LedgerError("--name = '': a customer needs a display name")
    taken = find(conn, name)
    if taken is not None and taken.id != was.id:
        raise LedgerError(f"--name = {name!r}: already names customer {taken.id!r}")
    conn.execute(
        "UPDATE customers SET name = ?, name_key = ? WHERE id = ?", (name, fold(name), was.id)
    )
    return was, Customer(was.id, name, was.vat_id, was.price_list, was.internal)


def merge(conn: sqlite3.Connection, text: str, into: str) -> tuple[Customer, Customer]:
    """Merge one customer into another: its jobs become the other's. (gone, kept)

    The merged id stays as an alias so old files naming it still resolve; the caller
    recomputes what carried it (closed months get adjustment rows).
    """
    gone, kept = require(conn, text, "customer merge"), require(conn, into, "--into")
    if gone.id == kept.id:
        raise LedgerError(f"--into = {into!r}: that is {gone.id!r} itself")
    conn.execute("UPDATE customers SET merged_into = ? WHERE id = ?", (kept.id, gone.id))
    conn.execute("UPDATE customers SET merged_into = ? WHERE merged_into = ?", (kept.id, gone.id))
    return gone, kept
