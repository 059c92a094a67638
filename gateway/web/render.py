"""Templates and pictures shared by the web page and the demo's self-contained report.html."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.config import ShopConfig
from gateway.engine.localtime import local_time, midnight_ms
from gateway.ledger import Ledger
from gateway.web import charts, views

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)
_env.filters["money"] = lambda cents: f"{cents / 100:,.2f}"


def render(name: str, **context: Any) -> str:
    """A template rendered (autoescaped)."""
    return _env.get_template(name).render(**context)


def report_html(cfg: ShopConfig, ledger: Ledger, period: str) -> str:
    """The month page as one file without a server: its charts, its CSS inline, no forms."""
    m = views.month(cfg, ledger, period)
    return render(
        "report.html",
        site=cfg.site.id,
        currency=cfg.site.currency,
        period=period,
        m=m,
        pictures=month_pictures(m, cfg),
        css=(TEMPLATES / "style.css").read_text(),
    )


def month_pictures(m: views.Month, cfg: ShopConfig) -> dict[str, Any]:
    """The month's charts as inline SVG (the page and the demo's report.html)."""
    tz = cfg.site.tz
    spans = {
        machine: [
            (
                r.start_ms,
                r.end_ms,
                r.customer,
                f"{r.job_id} {r.customer or '(unassigned)'}: "
                f"{local_time(r.start_ms, tz):%d %b %H:%M} - {local_time(r.end_ms, tz):%H:%M}, "
                f"{r.amounts.energy_wh / 1000:.2f} kWh, {r.amounts.total_cents / 100:.2f} "
                f"{cfg.site.currency}",
            )
            for r in rows
        ]
        for machine, rows in m.jobs.items()
    }
    lo, hi, ticks = _time_axis(m, tz)
    bands = list(cfg.tariff.band_names)
    bands += [b for v in m.band_wh.values() for b in v if b not in bands]
    money = cfg.site.currency
    return {
        "timeline": charts.timeline(spans, lo, hi, ticks, f"jobs per machine, {m.period}"),
        "bands": charts.stacked_bars(
            {k: {b: wh / 1000 for b, wh in v.items()} for k, v in m.band_wh.items()},
            bands,
            "kWh",
            "energy by tariff band",
        ),
        "cost": charts.stacked_bars(
            {k: {p: c / 100 for p, c in v.items()} for k, v in m.cost.items()},
            ["energy", "depreciation", "maintenance"],
            money,
            "cost breakdown",
        ),
        "idle": charts.bars(
            {k: wh / 1000 for k, wh in m.idle_wh.items()}, "kWh", "energy outside jobs"
        ),
        "customers": charts.bars(
            {k: c / 100 for k, c in sorted(m.customers.items(), key=lambda kv: -kv[1])},
            money,
            "cost per customer",
        ),
    }


def _time_axis(m: views.Month, tz: ZoneInfo) -> tuple[int, int, list[tuple[int, str]]]:
    """The local days of the month that have rows (all of it when they spread), with ticks:
    hours for a day or two, days for longer."""
    days = sorted({r.day for r in m.rows if r.kind != "adjustment"})
    first, last = (days[0], days[-1]) if days else (m.first, m.end - timedelta(days=1))
    lo, hi = midnight_ms(first, tz), midnight_ms(last + timedelta(days=1), tz)
    if (last - first).days < 2:
        hours = range(3, 24 * ((last - first).days + 1), 3)
        ticks = [(lo + h * 3_600_000, f"{(h % 24):02d}:00") for h in hours]
    else:
        step = 1 if (last - first).days < 16 else 7
        n = (last - first).days + 1
        ticks = [
            (midnight_ms(d, tz), f"{d:%d %b}")
            for d in (first + timedelta(days=k) for k in range(0, n, step))
        ]
    return lo, hi, ticks
