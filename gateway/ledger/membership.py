"""The ledger's member operations: memberships, purchases, statements, the prepaid view.

Every change runs in one transaction with its audit entry (Ledger's rule); reads run the
drawdown over the booked lines (ledger/members.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal

from gateway.engine.drawdown import Block, Deferred, Subscription, deferred, left
from gateway.engine.drawdown import expiring as expiring_credits
from gateway.engine.localtime import last_day, period_dates
from gateway.ledger import customers, members, periods
from gateway.ledger.audit import record
from gateway.ledger.ledger import Ledger
from gateway.ledger.members import Member, Walked, credits
from gateway.ledger.schema import transaction

EXPIRY_SOON_DAYS = 14  # `status` and the dashboard warn this long before hours expire
_VALID_DAYS = 365  # a block bought without a last valid day: one year, the day bought included


def default_until(bought: date) -> date:
    """The last valid day of a block bought on `bought` when none is given."""
    return bought + timedelta(days=_VALID_DAYS - 1)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a member's statement: a purchase, a job's drawdown, an expiry, ..."""

    day: date
    kind: str  # purchase, draw, return, expiry, carry
    block: str
    machine: str
    job_id: str
    hours: Decimal  # the job's counted hours (draw / return)
    credits: int  # 1e-8 credits: the balance's change (a carry line: 0, it stays)
    charged_credits: int = 0  # a job's credits the blocks did not cover
    charged_cents: int | None = None  # their price at the member's price list
    carried: int = 0  # a carry line: the credits that move on to the next month


@dataclass(frozen=True, slots=True)
class Statement:
    """A member's month: opening balance, every movement, closing balance (credits)."""

    member: Member
    period: str
    opening: int
    lines: list[Line]
    closing: int


@dataclass(frozen=True, slots=True)
class Held:
    """A block with credits left today (the web page's members list)."""

    block: str
    valid_until: date
    credits: int  # 1e-8 credits left


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's prepaid hours today: what `status` and the dashboard warn about."""

    member: str
    balance: int  # credits left today
    expiring: int  # credits that expire within EXPIRY_SOON_DAYS
    low: bool
    blocks: tuple[Held, ...] = ()  # where the balance is, earliest expiry first

    @property
    def alert(self) -> bool:
        """True when the balance is low or hours expire soon."""
        return self.low or self.expiring > 0


_SIGN = {"purchase": 1, "return": 1, "draw": -1, "expiry": -1, "carry": 0}


class MemberLedger(Ledger):
    """Ledger plus members and their prepaid hours."""

    def member_add(self, member: Member) -> Member:
        """Give a customer a membership (a new id with --name adds the customer too)."""
        with self._open(create=True) as conn, transaction(conn):
            who = customers.find(conn, member.id)
            if who is None:
                who = customers.add(conn, customers.Customer(member.id, member.name))
                record(conn, self._entry("customer add", asdict(who)))
            added = Member(
                who.id, who.name, member.card, member.hours, member.weights, member.low_below
            )
            members.add(conn, added, self._clock(), self._who)
            detail = asdict(added) | {
                "weights": {m: str(w) for m, w in (added.weights or {}).items()}
            }
            record(conn, self._entry("member add", detail | {"low_below": str(added.low_below)}))
        return added

    def member_list(self) -> list[Member]:
        """Every member."""
        with self._open(readonly=True) as conn:
            return members.listed(conn)

    def member(self, text: str) -> Member:
        """The member `text` names (id or display name)."""
        with self._open(readonly=True) as conn:
            return members.require(conn, text)

    def topup(self, text: str, hours: Decimal, price_cents: int, bought: date, until: date) -> int:
        """Record a block of hours bought (valid from `bought` through `until`)."""
        with self._open() as conn, transaction(conn):
            who = members.require(conn, text)
            block = Block("", who.id, credits(hours), price_cents, bought, until)
            found = members.topup(conn, who, block, hours, self._clock(), self._who)
            detail = {"member": who.id, "block": found, "hours": str(hours)}
            detail |= {"price_cents": price_cents, "bought": str(bought), "valid_until": str(until)}
            record(conn, self._entry("member topup", detail))
        return found

    def subscribe(self, text: str, plan: Subscription, hours: Decimal, cap: Decimal | None) -> int:
        """Record a subscription (hours each month from plan.first on)."""
        with self._open() as conn, transaction(conn):
            who = members.require(conn, text)
            plan = Subscription(
                "", who.id, credits(hours), plan.price_cents, plan.first, plan.last, plan.carry
            )
            found = members.subscribe(conn, who, plan, hours, cap, self._clock(), self._who)
            detail = {"member": who.id, "subscription": found, "hours": str(hours)}
            detail |= {"price_cents": plan.price_cents, "first": plan.first, "last": plan.last}
            detail |= {"carry": plan.carry, "cap": "" if cap is None else str(cap)}
            record(conn, self._entry("member subscribe", detail))
        return found

    def _walk(self, end: date, *, current: bool = True) -> Walked | None:
        """The drawdown before `end`; `current`: refused while rows are stale (shop.toml
        changed since they were computed), as every export is."""
        with self._open(readonly=True) as conn:
            if current:
                self._require_current(conn)
            return members.walk(conn, end)

    def statement(self, text: str, period: str) -> Statement:
        """One member's month: every purchase, drawdown and expiry, opening and closing."""
        who = self.member(text)
        first, end = period_dates(period)
        walked = self._walk(end)
        if walked is None:
            return Statement(who, period, 0, [], 0)
        d = walked.drawdown
        lines = _lines(walked, who.id, first, end)
        opening = sum(left(d, who.id, first - timedelta(days=1)).values())
        closing = sum(left(d, who.id, end - timedelta(days=1)).values())
        return Statement(who, period, opening, lines, closing)

    def prepaid(self, period: str) -> tuple[list[Deferred], bool]:
        """Every member's deferred revenue in a month (the accountant's prepaid view), and
        whether the month is closed (then: as its close froze it)."""
        with self._open(readonly=True) as conn:
            if period in periods.closed_periods(conn):
                return members.frozen(conn, period), True
        first, end = period_dates(period)
        walked = self._walk(end)
        return ([] if walked is None else deferred(walked.drawdown, first, last_day(period))), False

    def balances(self, today: date) -> list[Balance]:
        """Every member's credits left today, those expiring within EXPIRY_SOON_DAYS, and
        whether the balance is low. Also while shop.toml's costing changed (`status` shows
        that, and the hours of the stored rows are the best known)."""
        walked = self._walk(today + timedelta(days=1), current=False)
        if walked is None:
            return []
        d, until = walked.drawdown, today + timedelta(days=EXPIRY_SOON_DAYS)
        found = []
        for m in walked.members.values():
            held = left(d, m.id, today)
            now = sum(held.values())
            soon = expiring_credits(d, m.id, today, until)
            blocks = sorted(
                (Held(b.key, b.valid_until, held[b.key]) for b in d.blocks if held.get(b.key)),
                key=lambda h: (h.valid_until, h.block),
            )
            found.append(Balance(m.id, now, soon, now < credits(m.low_below), tuple(blocks)))
        return found


def _lines(walked: Walked, member: str, first: date, end: date) -> list[Line]:
    """A member's statement lines of [first, end): one per job line, one per other event."""
    d, out = walked.drawdown, []
    for e in d.events:
        if e.member == member and first <= e.day < end and e.use < 0 and e.credits:
            carry = e.credits if e.kind == "carry" else 0
            moved = _SIGN[e.kind] * e.credits
            out.append(Line(e.day, e.kind, e.block, "", "", Decimal(0), moved, carried=carry))
    for k, ((row, use), drawn) in enumerate(zip(walked.lines, d.drawn, strict=True)):
        if use.member != member or not first <= use.day < end:
            continue
        blocks = "+".join(dict.fromkeys(e.block for e in d.events if e.use == k))
        out.append(
            Line(
                use.day,
                "draw" if use.hours >= 0 else "return",
                blocks,
                row.machine,
                row.job_id,
                Decimal(use.hours).scaleb(-4),
                -drawn.covered,
                drawn.charged_credits,
                drawn.charged_cents,
            )
        )
    # Within a day: purchases, then jobs, then what the day's end does (expiry, carry).
    rank = {"purchase": 0, "draw": 1, "return": 1, "expiry": 2, "carry": 3}
    return sorted(out, key=lambda x: (x.day, rank[x.kind]))
