"""Members and their prepaid hours as ledger data (`shopwatt member`, docs/members.md).

A member is a customer with a membership: an optional NFC card UID, which hours of a job
count (run or job hours), and how many credits one hour of each machine costs (`*`: every
machine not named). Blocks and subscriptions are what the member paid for. The drawdown
itself is the engine's (engine/drawdown.py), run over the lines the export prints: frozen
rows of closed months and pending adjustments, so a closed month never changes and a late
correction draws (or gives back) in the open month it lands in.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from gateway.engine.drawdown import (
    HOURS_SCALE,
    SCALE,
    WEIGHT_SCALE,
    Block,
    Deferred,
    Drawdown,
    Subscription,
    Use,
    deferred,
    draw,
)
from gateway.engine.localtime import last_day, period_dates, period_of, period_start
from gateway.errors import LedgerError
from gateway.ledger import customers, periods
from gateway.ledger.rows import LedgerRow
from gateway.ledger.units import hours

HOURS = ("run_hours", "job_hours")
ANY_MACHINE = "*"
# An ISO 14443-A UID (4, 7 or 10 bytes) in upper-case hex, as the job events carry it.
_CARD = re.compile(r"[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}")


@dataclass(frozen=True, slots=True)
class Member:
    """A customer with a membership."""

    id: str  # the customer's id
    name: str
    card: str = ""  # NFC card UID, upper-case hex ('' : none)
    hours: str = "job_hours"  # run_hours or job_hours
    weights: Mapping[str, Decimal] | None = None  # machine (or '*') -> credits per hour
    low_below: Decimal = Decimal(2)  # credits: below this the balance is low

    def weight(self, machine: str) -> Decimal | None:
        """Credits one hour on `machine` costs (None: the plan does not cover the machine)."""
        w = self.weights or {}
        return w.get(machine, w.get(ANY_MACHINE))


def exact(text: str, option: str, places: int = 4) -> Decimal:
    """A non-negative decimal with at most `places` decimals; else a LedgerError naming it."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != round(value, places):
        raise LedgerError(
            f"{option} = {text!r}: expected a number >= 0 with at most {places} decimals"
        )
    return value


def cents(text: str, option: str) -> int:
    """A price such as 400 or 400.00 as integer cents (at most two decimals)."""
    return int(exact(text, option, places=2) * 100)


def weights(texts: Sequence[str], machines: Sequence[str]) -> dict[str, Decimal]:
    """`--weight mill=2.0` options as machine -> credits per hour (`*=1`: any other)."""
    out: dict[str, Decimal] = {}
    for text in texts:
        machine, sep, value = text.partition("=")
        machine = machine.strip()
        if not sep or (machine not in machines and machine != ANY_MACHINE):
            raise LedgerError(
                f"--weight = {text!r}: expected MACHINE=CREDITS_PER_HOUR with a machine of "
                f"shop.toml ({', '.join(machines)}) or * for every other machine"
            )
        out[machine] = exact(value, f"--weight {machine}")
    return out


def card_uid(text: str) -> str:
    """A card UID as the reader prints it ('04:a1:...' or '04A1...') -> upper-case hex."""
    uid = re.sub(r"[\s:-]", "", text).upper()
    if uid and not _CARD.fullmatch(uid):
        raise LedgerError(f"--card = {text!r}: expected the card's UID in hex (8, 14 or 20 digits)")
    return uid


def _from_sql(v: sqlite3.Row, name: str) -> Member:
    w = {m: Decimal(x) for m, x in json.loads(v["weights"]).items()}
    return Member(v["id"], name, v["card"], v["hours"], w, Decimal(v["low_below"]))


def listed(conn: sqlite3.Connection) -> list[Member]:
    """Every member, by id."""
    names = {c.id: c.name for c in customers.listed(conn)}
    found = conn.execute("SELECT * FROM members ORDER BY id")
    return [_from_sql(v, names.get(v["id"], v["id"])) for v in found]


def require(conn: sqlite3.Connection, text: str) -> Member:
    """The member `text` names (customer id or name); a LedgerError names the members."""
    who = customers.find(conn, text)
    found = {m.id: m for m in listed(conn)}
    if who is None or who.id not in found:
        # `member add` adds the customer too, so it is the one hint for both cases.
        what = (
            f"customer {who.id!r} has no membership"
            if who
            else "no member or customer has that name"
        )
        known = ", ".join(found) or "none yet"
        raise LedgerError(
            f"member = {text!r}: {what} (members: {known}); add one with `shopwatt member add`"
        )
    return found[who.id]


def by_card(conn: sqlite3.Connection, uid: str) -> Member | None:
    """The member whose card this is (None: nobody's)."""
    hit = conn.execute("SELECT id FROM members WHERE card = ?", (card_uid(uid),)).fetchone()
    return None if hit is None else require(conn, hit["id"])


def add(conn: sqlite3.Connection, member: Member, at: str, who: str) -> None:
    """Store a membership for an existing customer (a card is one member's only)."""
    if conn.execute("SELECT 1 FROM members WHERE id = ?", (member.id,)).fetchone():
        raise LedgerError(f"member {member.id!r} already exists; see `shopwatt member show`")
    if member.card:
        holder = by_card(conn, member.card)
        if holder is not None:
            raise LedgerError(f"--card = {member.card!r}: already the card of {holder.id!r}")
    text = {m: str(w) for m, w in (member.weights or {}).items()}
    conn.execute(
        "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            member.id,
            member.card,
            member.hours,
            json.dumps(text, sort_keys=True),
            str(member.low_below),
            at,
            who,
        ),
    )


def refuse_closed(conn: sqlite3.Connection, day: date, option: str) -> None:
    """Purchases never land in a closed month: its figures are handed over."""
    period = period_of(day)
    if period in periods.closed_periods(conn):
        raise LedgerError(
            f"{option} = {day}: {period} is closed; date the purchase in an open month"
        )


def topup(
    conn: sqlite3.Connection, member: Member, block: Block, hours_: Decimal, at: str, who: str
) -> int:
    """Record a block bought; returns its id."""
    refuse_closed(conn, block.bought, "--date")
    if block.valid_until < block.bought:
        raise LedgerError(f"--valid-until = {block.valid_until}: before --date {block.bought}")
    cursor = conn.execute(
        "INSERT INTO blocks (member, hours, price_cents, bought, valid_until, made_at, made_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            member.id,
            str(hours_),
            block.price_cents,
            block.bought.isoformat(),
            block.valid_until.isoformat(),
            at,
            who,
        ),
    )
    return int(cursor.lastrowid or 0)


def subscribe(
    conn: sqlite3.Connection,
    member: Member,
    plan: Subscription,
    hours_: Decimal,
    cap: Decimal | None,
    at: str,
    who: str,
) -> int:
    """Record a subscription from its first month on; returns its id."""
    refuse_closed(conn, period_start(plan.first), "--from")
    cursor = conn.execute(
        "INSERT INTO subscriptions (member, hours, price_cents, first, last, carry, cap, "
        "made_at, made_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            member.id,
            str(hours_),
            plan.price_cents,
            plan.first,
            plan.last,
            int(plan.carry),
            "" if cap is None else str(cap),
            at,
            who,
        ),
    )
    return int(cursor.lastrowid or 0)


def credits(value: Decimal) -> int:
    """Hours (or credits) as the engine's integer credits."""
    return int(value * SCALE)


def plans(conn: sqlite3.Connection, through: str) -> list[Block]:
    """Every block bought and every subscription month granted up to the month `through`."""
    blocks = [
        Block(
            f"b{v['id']}",
            v["member"],
            credits(Decimal(v["hours"])),
            v["price_cents"],
            date.fromisoformat(v["bought"]),
            date.fromisoformat(v["valid_until"]),
        )
        for v in conn.execute("SELECT * FROM blocks ORDER BY id")
    ]
    for v in conn.execute("SELECT * FROM subscriptions ORDER BY id"):
        sub = Subscription(
            f"s{v['id']}",
            v["member"],
            credits(Decimal(v["hours"])),
            v["price_cents"],
            v["first"],
            v["last"],
            bool(v["carry"]),
            credits(Decimal(v["cap"])) if v["cap"] else None,
        )
        blocks += sub.grants(through)
    return blocks


def _line(row: LedgerRow) -> tuple[str, str, str, str, str, int, str]:
    """Which printed line a row is (the same line in every read of the ledger)."""
    return (row.period, row.kind, row.machine, row.job_id, row.customer, row.start_ms, row.order)


def uses(found: Mapping[str, Member], rows: Sequence[LedgerRow]) -> list[tuple[LedgerRow, Use]]:
    """The members' job lines (and their adjustments) as the engine's uses."""
    out = []
    for row in rows:
        member = found.get(row.customer)
        kind = row.origin_kind if row.kind == "adjustment" else row.kind
        weight = member.weight(row.machine) if member and kind == "job" else None
        if member is None or weight is None:
            continue
        a = row.amounts
        h = hours(a.run_s if member.hours == "run_hours" else a.duration_s)
        key = "|".join(row.origin_key()[1:5])  # the job an adjustment corrects: one key
        out.append(
            (
                row,
                Use(
                    key,
                    member.id,
                    row.day,
                    row.end_ms,
                    row.machine,
                    int(h * HOURS_SCALE),
                    int(weight * WEIGHT_SCALE),
                    a.price_cents,
                ),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Walked:
    """The drawdown up to a day, with the lines it was computed from."""

    members: dict[str, Member]
    lines: list[tuple[LedgerRow, Use]]
    drawdown: Drawdown


def walk(conn: sqlite3.Connection, end: date) -> Walked | None:
    """Run the drawdown over every booked line before `end` (None: nothing prepaid yet)."""
    found = {m.id: m for m in listed(conn)}
    blocks = plans(conn, period_of(end))
    if not found or not blocks:
        return None
    # Nothing is drawn before the first purchase: the lines before it need not be read.
    first = min(b.bought for b in blocks)
    lines = uses(found, periods.booked(conn, first, end, list(found)))
    return Walked(found, lines, draw(blocks, [u for _, u in lines]))


def charged(conn: sqlite3.Connection, rows: list[LedgerRow], end: date) -> list[LedgerRow]:
    """The rows with each member's job priced only for the credits the blocks did not cover."""
    walked = walk(conn, end)
    if walked is None:
        return rows
    price = {
        _line(row): d.charged_cents
        for (row, _), d in zip(walked.lines, walked.drawdown.drawn, strict=True)
    }
    return [
        replace(r, amounts=replace(r.amounts, price_cents=price[_line(r)]))
        if _line(r) in price
        else r
        for r in rows
    ]


def freeze(conn: sqlite3.Connection, period: str) -> int:
    """Store a month's prepaid view as its close leaves it (call inside the close's
    transaction); returns the members frozen."""
    first, end = period_dates(period)
    walked = walk(conn, end)
    found = [] if walked is None else deferred(walked.drawdown, first, last_day(period))
    conn.executemany(
        "INSERT INTO prepaid_frozen VALUES (?, ?, ?, ?, ?, ?)",
        [(period, d.member, d.opening, d.received, d.recognised, d.closing) for d in found],
    )
    return len(found)


def frozen(conn: sqlite3.Connection, period: str) -> list[Deferred]:
    """A closed month's prepaid view as its close froze it, by member."""
    found = conn.execute(
        "SELECT member, opening, received, recognised, closing FROM prepaid_frozen "
        "WHERE period = ? ORDER BY member",
        (period,),
    )
    return [Deferred(*v) for v in found]
