"""Drawing members' jobs down from prepaid blocks: every figure worked out by hand."""

from __future__ import annotations

from datetime import date

from gateway.engine.drawdown import (
    SCALE,
    Block,
    Deferred,
    Subscription,
    Use,
    balance,
    deferred,
    draw,
    expiring,
)

C = SCALE  # one credit


def _use(key: str, day: date, hours: str, weight: str, price: int | None = None) -> Use:
    h, w = round(float(hours) * 10**4), round(float(weight) * 10**4)
    return Use(key, "ada", day, 0, "laser", h, w, price)


def _blocks() -> list[Block]:
    # b1: 10 h for 400.00 (40.00 a credit), b2: 10 h for 450.00 (45.00 a credit).
    return [
        Block("b1", "ada", 10 * C, 40000, date(2026, 11, 2), date(2026, 11, 30)),
        Block("b2", "ada", 10 * C, 45000, date(2026, 11, 10), date(2026, 12, 31)),
    ]


def test_jobs_draw_earliest_expiry_first_and_the_rest_is_charged() -> None:
    uses = [
        _use("j1", date(2026, 11, 5), "2.5", "1.0"),  # 2.5 from b1 (b2 not bought yet)
        _use("j2", date(2026, 11, 12), "3.0", "2.0"),  # 6 from b1 (expires first)
        _use("j3", date(2026, 11, 20), "4.0", "2.0"),  # 8: b1's last 1.5, then 6.5 of b2
        _use("j4", date(2026, 12, 3), "4.0", "1.0", 6000),  # b2's last 3.5, 0.5 charged
    ]
    d = draw(_blocks(), uses)
    assert [x.covered for x in d.drawn] == [250_000_000, 6 * C, 8 * C, 350_000_000]
    # 0.5 of 4 credits not covered: 60.00 x 0.5 / 4 = 7.50.
    assert (d.drawn[3].charged_credits, d.drawn[3].charged_cents) == (50_000_000, 750)
    draws = [(e.block, e.credits) for e in d.events if e.kind == "draw" and e.use == 2]
    assert draws == [("b1", 150_000_000), ("b2", 650_000_000)]
    # November: b1 all given up (400.00), b2 6.5 of 10 (292.50); December: b2's 157.50.
    assert deferred(d, date(2026, 11, 1), date(2026, 11, 30)) == [
        Deferred("ada", 0, 85000, 69250, 15750)
    ]
    assert deferred(d, date(2026, 12, 1), date(2026, 12, 31)) == [
        Deferred("ada", 15750, 0, 15750, 0)
    ]
    assert balance(d, "ada", date(2026, 11, 30)) == 350_000_000


def test_hours_left_at_the_end_of_validity_expire_that_day_and_count_as_revenue() -> None:
    d = draw(_blocks()[:1], [_use("j1", date(2026, 11, 30), "3.0", "1.0")])
    expired = [(e.day, e.credits) for e in d.events if e.kind == "expiry"]
    assert expired == [(date(2026, 11, 30), 7 * C)]  # the job on the last day still draws
    assert deferred(d, date(2026, 11, 1), date(2026, 11, 30)) == [
        Deferred("ada", 0, 40000, 40000, 0)
    ]
    assert expiring(d, "ada", date(2026, 11, 20), date(2026, 11, 30)) == 10 * C


def test_subscription_carries_over_up_to_its_cap_once() -> None:
    # 4 credits a month for 80.00, carry-over capped at 2.
    sub = Subscription("s1", "ada", 4 * C, 8000, "2026-11", carry=True, cap=2 * C)
    uses = [
        _use("j1", date(2026, 11, 10), "1.0", "1.0"),  # Nov: 3 left -> 2 carried, 1 expires
        _use("j2", date(2026, 12, 10), "5.0", "1.0"),  # the carried 2 first, then 3 of Dec's
    ]
    d = draw(sub.grants("2026-12"), uses)
    moves = [(e.day.month, e.kind, e.block, e.credits // C) for e in d.events]
    moves = [m for m in moves if m[1] in ("carry", "expiry")]
    assert moves == [
        (11, "carry", "s1:2026-11", 2),
        (11, "expiry", "s1:2026-11", 1),
        (12, "carry", "s1:2026-12", 1),
        (1, "expiry", "s1:2026-12", 1),  # carried once: gone at the end of January
    ]
    assert d.drawn[1].covered == 5 * C
    # Nov: 2 of 4 credits given up (1 drawn, 1 expired) -> 40.00 recognised.
    # Dec: Nov's carried 2 (40.00) + 3 of Dec's 4 (60.00); Dec's 1 carried stays deferred.
    assert deferred(d, date(2026, 12, 1), date(2026, 12, 31)) == [
        Deferred("ada", 4000, 8000, 10000, 2000)
    ]


def test_a_subscription_grants_through_the_last_month_there_is() -> None:
    # `member statement --month 9999-12` of a shop with a subscription: no month follows.
    sub = Subscription("s1", "ada", 4 * C, 8000, "9999-11")
    assert [b.key for b in sub.grants("9999-12")] == ["s1:9999-11", "s1:9999-12"]


def test_a_shortened_job_gives_credits_back_and_an_expired_block_expires_them_again() -> None:
    uses = [
        _use("j1", date(2026, 11, 5), "3.0", "1.0"),
        _use("j1", date(2026, 12, 1), "-1.0", "1.0"),  # adjustment in the next open month
    ]
    d = draw(_blocks()[:1], uses)
    assert d.drawn[1].covered == -C
    december = [(e.kind, e.credits) for e in d.events if e.day == date(2026, 12, 1)]
    assert december == [("return", C), ("expiry", C)]
    # The credit was recognised in November (drawn or expired): December changes nothing.
    assert deferred(d, date(2026, 12, 1), date(2026, 12, 31)) == [Deferred("ada", 0, 0, 0, 0)]


def test_a_shortened_job_first_takes_back_what_was_charged() -> None:
    block = [Block("b1", "ada", 2 * C, 8000, date(2026, 11, 2), date(2026, 12, 31))]
    uses = [
        _use("j1", date(2026, 11, 5), "3.0", "1.0", 3000),  # 2 drawn, 1 charged: 10.00
        _use("j1", date(2026, 11, 6), "-1.5", "1.0", -1500),  # 1 charged back, 0.5 returned
    ]
    d = draw(block, uses)
    assert (d.drawn[0].charged_cents, d.drawn[1].charged_cents) == (1000, -1000)
    assert d.drawn[1].covered == -50_000_000
    assert balance(d, "ada", date(2026, 11, 6)) == 50_000_000
