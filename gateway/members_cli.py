"""`shopwatt member ...`: members, their prepaid hours and statements (docs/members.md)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from gateway.billing_cli import force_option, local_day, month_option, statement_output
from gateway.cligroup import config_option
from gateway.clock import now_ms
from gateway.config import ShopConfig, load_config
from gateway.engine.drawdown import Subscription
from gateway.engine.localtime import last_day, local_date
from gateway.export import Table
from gateway.export.prepaid import credits, prepaid_table, statement_table, write_view_file
from gateway.export.to_text import columns
from gateway.ledger.members import HOURS, Member, card_uid, cents, exact, weights
from gateway.ledger.membership import EXPIRY_SOON_DAYS, Balance, MemberLedger, default_until
from gateway.ledger.periods import parse_month
from gateway.outfile import check_target, output_file


def _today(cfg: ShopConfig) -> date:
    return local_date(now_ms(), cfg.site.tz)


@click.command("add")
@config_option
@click.argument("member_id")
@click.option("--name", default="", help="Display name, when the customer is new.")
@click.option("--card", default="", help="NFC card UID (hex), e.g. 04A1B2C3D4E5F6.")
@click.option(
    "--hours",
    "counted",
    type=click.Choice(HOURS),
    default="job_hours",
    show_default=True,
    help="Which hours of a job draw credits.",
)
@click.option(
    "--weight",
    "weight_texts",
    multiple=True,
    required=True,
    help="MACHINE=CREDITS per hour (repeat; * for any other machine), e.g. mill=2.0.",
)
@click.option("--low-below", default="2", show_default=True, help="Credits: a low balance.")
def member_add(
    config_path: Path,
    member_id: str,
    name: str,
    card: str,
    counted: str,
    weight_texts: tuple[str, ...],
    low_below: str,
) -> None:
    """Give a customer a membership (a new id: the customer is added too)."""
    cfg = load_config(config_path)
    said = Member(
        member_id.strip(),
        " ".join(name.split()) or member_id.strip(),
        card_uid(card),
        counted,
        weights(weight_texts, list(cfg.machines)),
        exact(low_below, "--low-below"),
    )
    added = MemberLedger(cfg).member_add(said)
    click.echo(f"added member {added.id} ({added.name})")


def _weights(m: Member) -> str:
    return ", ".join(f"{k}={w}" for k, w in (m.weights or {}).items())


@click.command("list")
@config_option
def member_list(config_path: Path) -> None:
    """Every member: id, name, card, hours counted, credits per machine hour."""
    found = MemberLedger(load_config(config_path)).member_list()
    head = ["id", "name", "card", "hours", "weights", "low_below"]
    table = [[m.id, m.name, m.card, m.hours, _weights(m), str(m.low_below)] for m in found]
    click.echo(columns([head, *table]))


@click.command("show")
@config_option
@click.argument("member")
@click.option("--on", "day", type=local_day, help="Local date (default: today).")
def member_show(config_path: Path, member: str, day: datetime | None) -> None:
    """One member: plan, balance, low balance and hours expiring soon."""
    cfg = load_config(config_path)
    ledger = MemberLedger(cfg)
    m = ledger.member(member)
    on = day.date() if day else _today(cfg)
    found = next((b for b in ledger.balances(on) if b.member == m.id), None)
    lines = [
        f"member {m.id} ({m.name})",
        f"card: {m.card or '-'}",
        f"hours counted: {m.hours}",
        f"credits per hour: {_weights(m)}",
        f"balance on {on}: {credits(found.balance if found else 0)} credits",
    ]
    if found is not None and found.alert:
        lines.append(alert_text(found))
    click.echo("\n".join(lines))


def alert_text(a: Balance) -> str:
    """One member's warning as `status` and `member show` print it."""
    said = []
    if a.low:
        said.append(f"low balance: {credits(a.balance)} credits left")
    if a.expiring:
        said.append(f"{credits(a.expiring)} credits expire within {EXPIRY_SOON_DAYS} days")
    return f"{a.member}: " + "; ".join(said)


@click.command("topup")
@config_option
@click.argument("member")
@click.option("--hours", "hours_text", required=True, help="Credits bought (hours at weight 1).")
@click.option("--price", required=True, help="Price paid, in the site currency, e.g. 400.00.")
@click.option("--date", "bought", type=local_day, help="Local date bought (default: today).")
@click.option("--valid-until", type=local_day, help="Last valid local date (default: a year).")
def member_topup(
    config_path: Path,
    member: str,
    hours_text: str,
    price: str,
    bought: datetime | None,
    valid_until: datetime | None,
) -> None:
    """Record a block of prepaid hours bought."""
    cfg = load_config(config_path)
    day = bought.date() if bought else _today(cfg)
    until = valid_until.date() if valid_until else default_until(day)
    h = exact(hours_text, "--hours")
    found = MemberLedger(cfg).topup(member, h, cents(price, "--price"), day, until)
    click.echo(f"block b{found}: {h} hours for {price}, {day} .. {until}")


@click.command("subscribe")
@config_option
@click.argument("member")
@click.option("--hours", "hours_text", required=True, help="Credits granted every month.")
@click.option("--price", required=True, help="Price per month, in the site currency.")
@click.option("--from", "first", required=True, help="First month, YYYY-MM.")
@click.option("--to", "last", default="", help="Last month, YYYY-MM (default: open).")
@click.option("--carry-over", is_flag=True, help="Unused hours move to the next month, once.")
@click.option("--cap", default="", help="With --carry-over: most hours carried.")
def member_subscribe(
    config_path: Path,
    member: str,
    hours_text: str,
    price: str,
    first: str,
    last: str,
    carry_over: bool,
    cap: str,
) -> None:
    """Record a monthly subscription of hours."""
    if cap and not carry_over:
        raise click.UsageError("--cap needs --carry-over")
    first = parse_month(first, "--from")
    last = parse_month(last, "--to") if last else ""
    if last and last < first:
        raise click.BadParameter(f"{last!r}: before --from {first}", param_hint="--to")
    h, price_cents = exact(hours_text, "--hours"), cents(price, "--price")
    plan = Subscription("", "", 0, price_cents, first, last, carry_over)
    limit = exact(cap, "--cap") if cap else None
    found = MemberLedger(load_config(config_path)).subscribe(member, plan, h, limit)
    click.echo(f"subscription s{found}: {h} hours a month for {price} from {first}")


@click.command("statement")
@config_option
@click.argument("member")
@month_option
@statement_output
@force_option
def member_statement(
    config_path: Path, member: str, month: str, output: Path | None, force: bool
) -> None:
    """A member's month: opening balance, purchases, each job's drawdown, expiries, closing."""
    cfg = load_config(config_path)
    check_output(output, cfg, force)
    shown = MemberLedger(cfg).statement(member, parse_month(month))
    title, table = statement_table(shown, cfg.site.currency)
    write_view(table, title, output, cfg.own_files, force)


def write_view(
    table: Table,
    title: list[tuple[str, str]],
    output: Path | None,
    protected: list[Path] | None = None,
    force: bool = False,
) -> None:
    """A text table on stdout, or a new .csv / one-sheet .xlsx file (gateway/outfile.py)."""
    if output is None:
        head = [f"{label}: {value}" if value else label for label, value in title]
        text = [table.header, *([str(v) for v in line] for line in table.lines)]
        click.echo("\n".join([*head, "", columns(text)]))
        return
    with output_file(output, protected=protected or [], force=force) as fh:
        write_view_file(table, title, fh, xlsx=output.suffix.lower() == ".xlsx")
    click.echo(f"wrote {output}", err=True)


def check_output(output: Path | None, cfg: ShopConfig, force: bool) -> None:
    """Refuse a bad --output before the ledger is read: a .csv or .xlsx, new or --force."""
    if output is None:
        return
    if output.suffix.lower() not in (".csv", ".xlsx"):
        raise click.BadParameter(f"{output}: give a .xlsx or .csv file", param_hint="--output")
    check_target(output, cfg.own_files, force, "--output")


def prepaid_view(cfg: ShopConfig, month: str, output: Path | None, force: bool = False) -> None:
    """`shopwatt export --view prepaid`: deferred revenue per member and month."""
    check_output(output, cfg, force)
    period = parse_month(month)
    ledger = MemberLedger(cfg)
    names = {m.id: m.name for m in ledger.member_list()}
    found, is_closed = ledger.prepaid(period)
    table = prepaid_table(found, names, cfg.site.currency)
    closed = "closed" if is_closed else "open"
    title = [("Prepaid hours: deferred revenue", ""), ("site", cfg.site.id)]
    title += [("month", f"{period} ({closed})"), ("to", f"{last_day(period)}")]
    write_view(table, title, output, cfg.own_files, force)


def alerts_text(cfg: ShopConfig) -> str:
    """The members' warnings for `shopwatt status` ('' : none)."""
    found = [b for b in MemberLedger(cfg).balances(_today(cfg)) if b.alert]
    return "\n".join(["members:", *(f"  {alert_text(a)}" for a in found)]) if found else ""


@click.group("member")
def member() -> None:
    """Members and their prepaid production hours."""


for _command in (
    member_add,
    member_list,
    member_show,
    member_topup,
    member_subscribe,
    member_statement,
):
    member.add_command(_command)
