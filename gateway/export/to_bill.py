"""`shopwatt bill`: the month as text, line by line as the utility's paper bill has it."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.engine.localtime import local_time
from gateway.ledger.bill import Bill
from gateway.ledger.units import money

_WIDTH = 64


def _line(label: str, amount: object) -> str:
    text = str(amount)
    return f"{label:<{_WIDTH - len(text) - 1}} {text}"


def bill_text(bill: Bill, tz: ZoneInfo) -> str:
    """The bill as aligned text; every amount in the site currency with 2 decimals."""
    lines = [f"bill {bill.period} ({bill.currency})", "energy"]
    lines += [_line(f"  kwh_{band}", f"{value:.3f}") for band, value in bill.band_kwh.items()]
    total_kwh = sum(bill.band_kwh.values(), Decimal("0.000"))
    lines.append(_line("  kWh", f"{total_kwh:.3f}"))
    lines.append(
        _line("  energy cost (the export's energy_cost lines)", f"{money(bill.energy_cents)}")
    )
    if bill.solar_wh:
        solar = Decimal(bill.solar_wh).scaleb(-3)
        lines.append(_line("  own solar used by the machines (solar_kwh)", f"{solar:.3f}"))
        lines.append(_line("  grid kWh (kWh - own solar)", f"{total_kwh - solar:.3f}"))
        lines.append(
            _line("  own solar: feed-in not earned - energy not bought", money(bill.solar_cents))
        )
    if bill.fallback_quarters:
        lines.append(
            f"    priced at the fallback rate (no price slot): {bill.fallback_quarters} quarter "
            f"hours, {bill.fallback_wh / 1000:.3f} kWh"
        )
    if bill.adjustment_cents:
        lines.append(f"    of which adjustments of closed months: {money(bill.adjustment_cents)}")
    lines.append("demand")
    if bill.peak_start_ms is None:
        lines.append("  no energy metered: no peak")
    else:
        at = f"{local_time(bill.peak_start_ms, tz):%Y-%m-%d %H:%M}"
        lines.append(_line(f"  peak 15-minute average at {at}", f"{bill.peak_kw} kW"))
        rate = f"{bill.peak_kw} kW x {bill.demand_per_kw:g}/kW"
        lines.append(_line(f"  demand charge {rate}", money(bill.demand_cents)))
        for s in bill.shares:
            who = f"{s.machine} {s.job_id or '(overhead)'} {s.customer}".rstrip()
            lines.append(
                _line(f"    {who}: {s.wh / 1000:.3f} kWh in the peak", f"{money(s.cents)}")
            )
    if bill.late_peak is not None:
        start, kw = bill.late_peak
        lines.append(
            f"  readings stored after the close make the peak {kw} kW at "
            f"{local_time(start, tz):%Y-%m-%d %H:%M}: not rebilled"
        )
    lines.append("fixed charges")
    lines.append(_line(f"  {bill.days} days", money(bill.fixed_day_cents)))
    lines.append(_line("  per month", money(bill.fixed_month_cents)))
    co2_g = sum(c.co2_g for c in bill.charges.values())
    if co2_g:  # none without co2_g_per_kwh / co2_series: not a shop that emits nothing
        lines.append(_line("CO2 of the export's lines (kg)", f"{Decimal(co2_g).scaleb(-3):.3f}"))
    lines.append(_line("net", money(bill.net_cents)))
    vat = (Decimal(repr(bill.vat)) * 100).normalize()
    lines.append(_line(f"VAT {vat:f} %", money(bill.vat_cents)))
    lines.append(_line("total", money(bill.total_cents)))
    return "\n".join(lines)
