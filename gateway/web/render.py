"""Templates and pictures shared by the web page and the demo's self-contained report.html."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.config import ShopConfig
from gateway.engine.demand import NO_DATA, QUARTER_MS
from gateway.engine.localtime import local_time, midnight_ms
from gateway.engine.states import IDLE, OFF, RUNNING
from gateway.ledger import Ledger
from gateway.web import charts, views

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)
_env.filters["money"] = lambda cents: f"{cents / 100:,.2f}"


def compile_templates() -> None:
    """Compile every template now (a server's start), not in its first request."""
    for path in TEMPLATES.glob("*.html"):
        _env.get_template(path.name)


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


def month_pictures(
    m: views.Month, cfg: ShopConfig, day: date | None = None, link: str = ""
) -> dict[str, Any]:
    """The month's charts as inline SVG (the page and the demo's report.html).

    `day`: the timeline shows that local day by quarter hours (else the month's days).
    `link`: the page's address; each day of the timeline's strips links to `link&day=D`
    (none in report.html, which has no server).
    """
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
    first, last = (day, day) if day else _days_shown(m)
    lo, hi, ticks = _time_axis(first, last, tz)
    bill, money = m.bill, cfg.site.currency
    peak_at = ""
    marks = []
    if bill.peak_start_ms is not None:
        peak_at = f"{local_time(bill.peak_start_ms, tz):%Y-%m-%d %H:%M}"
        marks.append((bill.peak_start_ms, f"demand peak: {bill.peak_kw} kW from {peak_at}"))
    bands = list(cfg.tariff.band_names)
    bands += [b for v in m.band_wh.values() for b in v if b not in bands]
    return {
        "timeline": charts.timeline(
            spans,
            lo,
            hi,
            ticks,
            f"states and jobs per machine, {day or m.period}",
            _state_blocks(m, first, last, tz, link if day is None else ""),
            marks,
        ),
        "day": day,
        "by_quarter": (last - first).days < 2,  # a day or two: the strip by quarter hour
        "bands": charts.stacked_bars(
            {k: {b: wh / 1000 for b, wh in v.items()} for k, v in m.band_wh.items()},
            bands,
            "kWh",
            "energy by tariff band",
        ),
        "cost": charts.stacked_bars(
            {k: {p: c / 100 for p, c in v.items()} for k, v in m.cost.items()},
            views.COST_PARTS,
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
        "peak_at": peak_at,
    }


def _days_shown(m: views.Month) -> tuple[date, date]:
    """The first and last local day of the month that have rows (all of it when none)."""
    days = sorted({r.day for r in m.rows if r.kind != "adjustment"})
    return (days[0], days[-1]) if days else (m.first, m.end - timedelta(days=1))


def _time_axis(first: date, last: date, tz: ZoneInfo) -> tuple[int, int, list[tuple[int, str]]]:
    """The local days [first, last] in ms, with ticks: hours for a day or two, days for
    longer."""
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


def _state_blocks(
    m: views.Month, first: date, last: date, tz: ZoneInfo, link: str
) -> dict[str, list[charts.StateBlock]]:
    """Each machine's strip over [first, last]: a block per quarter hour state run for a
    day or two, else one per day with its hours off / idle / running (linking to the day
    when `link` is given)."""
    days = [first + timedelta(days=k) for k in range((last - first).days + 2)]  # and the end
    edges = np.array([midnight_ms(d, tz) for d in days], dtype=np.int64)
    cut = ((edges - m.lo_ms) // QUARTER_MS).tolist()

    def at(k: int) -> int:  # the start of the month's quarter hour k
        return m.lo_ms + k * QUARTER_MS

    found: dict[str, list[charts.StateBlock]] = {}
    for machine, states in m.states.items():
        blocks: list[charts.StateBlock] = []
        if (last - first).days < 2:
            s = states[cut[0] : cut[-1]]
            begin = np.flatnonzero(np.diff(s, prepend=-1))
            stop = np.append(begin[1:], len(s))
            for a, b in zip(begin.tolist(), stop.tolist(), strict=True):
                state = int(s[a])
                if state != NO_DATA:
                    one = (float(state == OFF), float(state == IDLE), float(state == RUNNING))
                    blocks.append((at(cut[0] + a), at(cut[0] + b), one, ""))
        else:
            for k, day in enumerate(days[:-1]):
                n = np.bincount(states[cut[k] : cut[k + 1]], minlength=4) / (cut[k + 1] - cut[k])
                if n[:3].any():
                    href = f"{link}&day={day.isoformat()}" if link else ""
                    shares = (float(n[OFF]), float(n[IDLE]), float(n[RUNNING]))
                    blocks.append((at(cut[k]), at(cut[k + 1]), shares, href))
        found[machine] = blocks
    return found
