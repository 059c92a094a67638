"""Server-rendered inline SVG charts (no JavaScript, no build step): the month page and the
demo's report.html draw with these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe-Ito), in the order parts and customers are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
UNASSIGNED = "#9aa5b1"
_LABEL_W, _BAR_H, _GAP, _WIDTH = 150, 22, 8, 760


def _legend(
    names: Sequence[str], y: int, colours: Sequence[str | None] = PALETTE
) -> tuple[str, int]:
    """Colour keys in rows that wrap at the chart's width; the SVG and its bottom y."""
    parts, x = [], _LABEL_W
    for k, name in enumerate(names):
        width = 24 + 7 * len(name)
        if x + width > _WIDTH and x > _LABEL_W:
            x, y = _LABEL_W, y + 18
        colour = colours[k % len(colours)]
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{y + 11}">{escape(name)}</text>'
        )
        x += width
    return "".join(parts), y + 18


def _label(text: str, y: int) -> str:
    """A row label that fits left of the bars (the whole name in its hover title)."""
    short = text if len(text) <= 22 else text[:21] + "…"
    return f'<text x="0" y="{y}"><title>{escape(text)}</title>{escape(short)}</text>'


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def stacked_bars(
    data: Mapping[str, Mapping[str, float]], parts: Sequence[str], unit: str, title: str
) -> Markup:
    """One horizontal bar per label, split into `parts`, with totals and a legend."""
    top = max((sum(v.get(p, 0.0) for p in parts) for v in data.values()), default=0.0) or 1.0
    span = _WIDTH - _LABEL_W - 110
    body = []
    for row, (label, values) in enumerate(data.items()):
        y = row * (_BAR_H + _GAP)
        body.append(_label(label, y + 15))
        x = float(_LABEL_W)
        for k, part in enumerate(parts):
            w = span * values.get(part, 0.0) / top
            if w > 0:
                body.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" '
                    f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)}, '
                    f"{escape(part)}: {values.get(part, 0.0):,.2f} {escape(unit)}</title></rect>"
                )
            x += w
        total = sum(values.get(p, 0.0) for p in parts)
        body.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{total:,.2f} {escape(unit)}</text>')
    y = len(data) * (_BAR_H + _GAP)
    if len(parts) == 1:  # one part: the unit beside each bar says it all
        return _svg(y, "".join(body), title)
    legend, bottom = _legend(parts, y + 4)
    return _svg(bottom + 4, "".join(body) + legend, title)


def bars(data: Mapping[str, float], unit: str, title: str) -> Markup:
    """One horizontal bar per label (one part): cost per customer, idle energy."""
    return stacked_bars({k: {unit: v} for k, v in data.items()}, [unit], unit, title)


def timeline(
    spans: Mapping[str, Sequence[tuple[int, int, str, str]]],
    lo: int,
    hi: int,
    ticks: Sequence[tuple[int, str]],
    title: str,
) -> Markup:
    """Per machine a lane from lo to hi (ms) with its jobs as blocks coloured by customer.

    spans: machine -> (start_ms, end_ms, customer, hover text); ticks: (ms, label).
    """
    customers = sorted({c for jobs in spans.values() for _, _, c, _ in jobs if c})
    colour = {c: PALETTE[k % len(PALETTE)] for k, c in enumerate(customers)}
    colour[""] = UNASSIGNED  # grey: the jobs still waiting for a customer
    span = _WIDTH - _LABEL_W - 10
    scale = span / max(hi - lo, 1)
    body = []
    for row, (machine, jobs) in enumerate(spans.items()):
        y = row * (_BAR_H + _GAP)
        body.append(
            _label(machine, y + 15)
            + f'<rect x="{_LABEL_W}" y="{y}" width="{span}" height="{_BAR_H}" fill="#eef1f4"/>'
        )
        for start, end, customer, text in jobs:
            x = _LABEL_W + (max(start, lo) - lo) * scale
            w = max((min(end, hi) - max(start, lo)) * scale, 1.5)  # a short job stays visible
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" '
                f'fill="{colour[customer]}"><title>{escape(text)}</title></rect>'
            )
    y = len(spans) * (_BAR_H + _GAP)
    for t, label in ticks:
        x = _LABEL_W + (t - lo) * scale
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{y - _GAP}" stroke="#fff"/>'
            f'<text x="{x:.1f}" y="{y + 8}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    legend, bottom = _legend(
        [*customers, "(unassigned)"], y + 18, [*map(colour.get, customers), UNASSIGNED]
    )
    return _svg(bottom + 4, "".join(body) + legend, title)
