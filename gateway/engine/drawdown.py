"""Members' prepaid hours: draw jobs down from blocks, expire and carry over (pure, exact).

Credits are integers of 1e-8 credit: a job's printed hours (4 decimals) times its
machine's weight (4 decimals at most) is then exact, and so is every balance. Per member,
day by day: blocks bought that day become usable, the day's jobs draw in booking order,
and at the end of the day the blocks whose validity ends expire (a subscription grant with
carry-over first moves up to its cap into the next month, once). A job draws from the
blocks valid on its day, earliest expiry first (then earliest bought, then id); what the
balance does not cover is charged at the member's price list.

A negative use (an adjustment that shortens a job, or moves it to someone else) undoes the
job's draws in reverse: first the part that was charged, then credits back to the blocks it
drew from, latest first; credits returned to a block whose validity has passed expire again
on that day. Revenue is recognised per block as the credits it has given up (drawn or
expired) at its price per credit, rounded once on the running total, so each month's
opening + received - recognised = closing holds to the cent.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

import numpy as np

from gateway.engine.localtime import last_day, next_period, period_of, period_start

SCALE = 10**8  # integer credits per credit
HOURS_SCALE = 10**4  # printed hours: 4 decimals
WEIGHT_SCALE = 10**4  # a machine weight has at most 4 decimals

EventKind = Literal["purchase", "draw", "return", "expiry", "carry"]


@dataclass(frozen=True, slots=True)
class Block:
    """Prepaid credits: a block bought, or one month of a subscription."""

    key: str  # stable id: 'b<id>' (topup) or 's<id>:<YYYY-MM>' (subscription month)
    member: str
    credits: int  # 1e-8 credits
    price_cents: int
    bought: date
    valid_until: date  # the last day it can be drawn from; what is left expires that day
    carry_cap: int | None = None  # subscription with carry-over: most credits carried once


@dataclass(frozen=True, slots=True)
class Use:
    """One booked job line of a member: a job, or an adjustment of one (signed credits)."""

    key: str  # the job it is about (an adjustment carries its job's key)
    member: str
    day: date
    order: int  # booking order within the day (a job's end, UTC ms)
    machine: str
    hours: int  # 1e-4 h, signed
    weight: int  # 1e-4 credit per hour
    price_cents: int | None  # the line's price at the member's price list (None: no price)

    @property
    def credits(self) -> int:
        """Hours x weight, exact, in 1e-8 credits."""
        return self.hours * self.weight


@dataclass(frozen=True, slots=True)
class Event:
    """A change of one block's balance (purchase: credits bought, others: credits moved)."""

    member: str
    day: date
    kind: EventKind
    block: str
    credits: int  # 1e-8 credits, positive
    use: int = -1  # index of the use (draw, return), else -1


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one use drew from the blocks and what of it is charged at the price list."""

    covered: int  # credits taken from blocks (negative: given back)
    charged_credits: int  # credits not covered (negative: charged before, now returned)
    charged_cents: int | None  # price of the uncovered part (None: the line has no price)


@dataclass(frozen=True, slots=True)
class Drawdown:
    """Everything the blocks went through, and what each use drew."""

    blocks: list[Block]
    events: list[Event]
    drawn: list[Drawn]  # one per use, in the uses' order


@dataclass(slots=True)
class _Member:
    """One member's blocks and balances while the days are walked."""

    blocks: list[Block]
    balance: np.ndarray = field(init=False)
    expired: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.balance = np.zeros(len(self.blocks), dtype=np.int64)
        self.expired = np.zeros(len(self.blocks), dtype=bool)


@dataclass(frozen=True, slots=True)
class Subscription:
    """Credits granted every month at a price per month, with or without carry-over."""

    key: str  # 's<id>'
    member: str
    credits: int  # 1e-8 credits a month
    price_cents: int  # a month
    first: str  # first month 'YYYY-MM'
    last: str = ""  # last month ('' : until ended)
    carry: bool = False  # what is left at a month's end moves to the next month (once)
    cap: int | None = None  # most credits carried (None: all that is left)

    def grants(self, through: str) -> list[Block]:
        """One block per month from `first` to `last` (or `through`), valid for the month."""
        end = min(self.last or through, through)
        out, period = [], self.first
        while period <= end:
            start = period_start(period)
            cap = (self.credits if self.cap is None else self.cap) if self.carry else None
            key = f"{self.key}:{period}"
            out.append(
                Block(
                    key, self.member, self.credits, self.price_cents, start, last_day(period), cap
                )
            )
            if period == end:  # 9999-12 has no month after it to compare with
                break
            period = next_period(period)
        return out


def share(cents: int, part: int, whole: int) -> int:
    """cents x part / whole, rounded once, half up (away from zero)."""
    exact = Decimal(cents) * Decimal(part) / Decimal(whole)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def draw(blocks: Sequence[Block], uses: Sequence[Use]) -> Drawdown:
    """Walk every member's days: purchases, the day's uses, then expiries and carry-overs."""
    members: dict[str, list[Block]] = defaultdict(list)
    for b in blocks:
        members[b.member].append(b)
    mine: dict[str, list[int]] = defaultdict(list)
    for k, u in enumerate(uses):
        mine[u.member].append(k)
    events: list[Event] = []
    drawn: dict[int, Drawn] = {}
    walked: list[Block] = []
    for name in sorted({*members, *mine}):
        m = _Member(members[name])
        _walk(name, m, uses, sorted(mine[name], key=lambda k: _when(uses[k])), events, drawn)
        walked += m.blocks
    return Drawdown(walked, events, [drawn[k] for k in range(len(uses))])


def _when(u: Use) -> tuple[date, int, str]:
    return u.day, u.order, u.key


def _walk(
    name: str,
    m: _Member,
    uses: Sequence[Use],
    mine: list[int],
    events: list[Event],
    drawn: dict[int, Drawn],
) -> None:
    """One member: the days with a purchase, a use or an end of validity, in order."""
    days = {b.bought for b in m.blocks} | {uses[k].day for k in mine}
    pending = deque(mine)
    book = _Book()
    walked: date | None = None
    while True:
        # A carry-over moves a block's end: the days still to walk are found each time.
        ends = {b.valid_until for j, b in enumerate(m.blocks) if not m.expired[j]}
        todo = [d for d in days | ends if walked is None or d > walked]
        if not todo:
            return
        day = walked = min(todo)
        for j, b in enumerate(m.blocks):
            if b.bought == day:
                m.balance[j] = b.credits
                events.append(Event(name, day, "purchase", b.key, b.credits))
        while pending and uses[pending[0]].day == day:
            k = pending.popleft()
            drawn[k] = _use(name, m, uses[k], k, book, events)
        _expire(name, m, day, events)


@dataclass(slots=True)
class _Book:
    """Per job: what it drew from which block, and what of it was charged (to undo it)."""

    drew: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    charged: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _use(
    name: str,
    m: _Member,
    u: Use,
    k: int,
    book: _Book,
    events: list[Event],
) -> Drawn:
    """Draw one use from the member's blocks (or give a negative one back)."""
    need = u.credits
    if need >= 0:
        usable = [
            j
            for j, b in enumerate(m.blocks)
            if b.bought <= u.day <= b.valid_until and not m.expired[j]
        ]
        order = sorted(usable, key=lambda j: _rank(m.blocks[j]))
        idx = np.array(order, dtype=np.int64)
        bal = m.balance[idx]
        # Take from each block, in order, what the blocks before it left of the need.
        take = np.clip(need - (np.cumsum(bal) - bal), 0, bal)
        m.balance[idx] -= take
        for j, t in zip(idx.tolist(), take.tolist(), strict=True):
            if t:
                book.drew[u.key].append((j, t))
                events.append(Event(name, u.day, "draw", m.blocks[j].key, t, k))
        covered = int(take.sum())
        rest = need - covered
        book.charged[u.key] += rest
        cents = None if u.price_cents is None or need == 0 else share(u.price_cents, rest, need)
        return Drawn(covered, rest, cents)
    give = -need
    unpaid = min(give, book.charged[u.key])
    book.charged[u.key] -= unpaid
    give -= unpaid
    back_total = 0
    while give and book.drew[u.key]:
        j, t = book.drew[u.key].pop()
        back = min(give, t)
        if back < t:
            book.drew[u.key].append((j, t - back))
        give -= back
        back_total += back
        m.balance[j] += back
        events.append(Event(name, u.day, "return", m.blocks[j].key, back, k))
        if m.expired[j] or m.blocks[j].valid_until < u.day:
            # The block is over: what comes back to it expires again at once.
            m.balance[j] -= back
            events.append(Event(name, u.day, "expiry", m.blocks[j].key, back))
    returned_charge = unpaid + give  # more given back than drawn: credit at the price list
    cents = None if u.price_cents is None else share(u.price_cents, returned_charge, -need)
    return Drawn(-back_total, -returned_charge, cents)


def _rank(b: Block) -> tuple[date, date, str]:
    """The drawing order: earliest expiry first, then earliest bought, then id."""
    return b.valid_until, b.bought, b.key


def _expire(name: str, m: _Member, day: date, events: list[Event]) -> None:
    """At the end of `day`: carry over (once, up to the cap), expire the rest."""
    for j, b in enumerate(m.blocks):
        if m.expired[j] or b.valid_until != day:
            continue
        left = int(m.balance[j])
        if b.carry_cap is not None:
            carried = min(left, b.carry_cap)
            if carried:
                events.append(Event(name, day, "carry", b.key, carried))
            nxt = day + timedelta(days=1)
            m.blocks[j] = replace(b, valid_until=last_day(period_of(nxt)), carry_cap=None)
            if left - carried:
                m.balance[j] -= left - carried
                events.append(Event(name, day, "expiry", b.key, left - carried))
            # The carried credits stay in the same block (same price per credit).
            continue
        if left:
            events.append(Event(name, day, "expiry", b.key, left))
        m.balance[j] = 0
        m.expired[j] = True


@dataclass(frozen=True, slots=True)
class Deferred:
    """One member's prepaid money in one month (cents): the accountant's view."""

    member: str
    opening: int  # received for credits not yet drawn or expired, at the month's start
    received: int  # paid for blocks bought in the month
    recognised: int  # earned by credits drawn or expired in the month
    closing: int  # opening + received - recognised


def given_up(d: Drawdown, through: date) -> dict[str, int]:
    """Per block: credits drawn or expired, less those returned, up to the end of `through`."""
    sign = {"draw": 1, "expiry": 1, "return": -1}
    out: dict[str, int] = defaultdict(int)
    for e in d.events:
        if e.day <= through and e.kind in sign:
            out[e.block] += sign[e.kind] * e.credits
    return out


def _deferred(d: Drawdown, through: date) -> dict[str, int]:
    """Per member: what its blocks bought up to `through` still owe, in cents."""
    gone = given_up(d, through)
    out: dict[str, int] = defaultdict(int)
    for b in d.blocks:
        if b.bought <= through:
            out[b.member] += b.price_cents - share(b.price_cents, gone[b.key], b.credits)
    return out


def deferred(d: Drawdown, first: date, last: date) -> list[Deferred]:
    """Each member's deferred revenue over the days [first, last], by member id."""
    opening, closing = _deferred(d, first - timedelta(days=1)), _deferred(d, last)
    received: dict[str, int] = defaultdict(int)
    for b in d.blocks:
        if first <= b.bought <= last:
            received[b.member] += b.price_cents
    return [
        Deferred(m, opening[m], received[m], opening[m] + received[m] - closing[m], closing[m])
        for m in sorted({b.member for b in d.blocks if b.bought <= last})
    ]


def left(d: Drawdown, member: str, through: date) -> dict[str, int]:
    """Per block of a member bought by `through`: credits left at the end of that day."""
    gone = given_up(d, through)
    return {
        b.key: b.credits - gone[b.key]
        for b in d.blocks
        if b.member == member and b.bought <= through
    }


def expiring(d: Drawdown, member: str, today: date, until: date) -> int:
    """Credits of a member that expire after `today` and by `until` unless drawn first."""
    now = left(d, member, today)
    return sum(now[b.key] for b in d.blocks if b.key in now and today < b.valid_until <= until)


def balance(d: Drawdown, member: str, through: date) -> int:
    """A member's credits left at the end of `through`."""
    return sum(left(d, member, through).values())
