"""Server-rendered inline SVG charts (no JavaScript, no build step): the month page and the
demo's report.html draw with these."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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
        width = 28 + 7 * len(name)  # wide letters (m, w) need more than 7 px
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


def _svg(height: int, body: str, title: str, top: int = 0) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 {top} {_WIDTH} {height - top}" role="img" '
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


# The machine states' colours in the timeline's strips: muted, apart from the customers'.
STATE_COLOURS = {"off": "#cfd6dd", "idle": "#f2c14e", "running": "#3d5a80"}
_STRIP_H, _JOB_H, _LANE_GAP = 12, 18, 10
# A block of a machine's strip: (start_ms, end_ms, share of it off, idle, running; link).
StateBlock = tuple[int, int, tuple[float, float, float], str]


def _strip(blocks: Sequence[StateBlock], y: int, x_of: Callable[[int], float]) -> str:
    """A machine's states as blocks, each stacked off / idle / running by its shares."""
    parts = []
    for start, end, shares, link in blocks:
        x, w = x_of(start), max(x_of(end) - x_of(start), 0.5)
        bottom = float(y + _STRIP_H)
        rects = []
        for name, share in zip(("running", "idle", "off"), shares[::-1], strict=True):
            h = _STRIP_H * share
            if h > 0:
                bottom -= h
                rects.append(
                    f'<rect x="{x:.1f}" y="{bottom:.1f}" width="{w:.1f}" height="{h:.1f}" '
                    f'fill="{STATE_COLOURS[name]}"/>'
                )
        hours = ", ".join(
            f"{(end - start) * share / 3_600_000:.1f} h {name}"
            for name, share in zip(("off", "idle", "running"), shares, strict=True)
            if share > 0
        )
        body = f"<title>{escape(hours)}</title>" + "".join(rects)
        parts.append(f'<a href="{escape(link)}">{body}</a>' if link else f"<g>{body}</g>")
    return "".join(parts)


def timeline(
    spans: Mapping[str, Sequence[tuple[int, int, str, str]]],
    lo: int,
    hi: int,
    ticks: Sequence[tuple[int, str]],
    title: str,
    states: Mapping[str, Sequence[StateBlock]] | None = None,
    marks: Sequence[tuple[int, str]] = (),
) -> Markup:
    """Per machine a lane from lo to hi (ms): a strip of its states (off / idle / running)
    over its jobs as blocks coloured by customer, with marked instants (the demand peak).

    spans: machine -> (start_ms, end_ms, customer, hover text); ticks: (ms, label);
    states: machine -> its strip's blocks; marks: (ms, hover text).
    """
    customers = sorted({c for jobs in spans.values() for _, _, c, _ in jobs if c})
    colour = {c: PALETTE[k % len(PALETTE)] for k, c in enumerate(customers)}
    colour[""] = UNASSIGNED  # grey: the jobs still waiting for a customer
    span = _WIDTH - _LABEL_W - 10
    scale = span / max(hi - lo, 1)

    def x_of(t: int) -> float:
        return _LABEL_W + (min(max(t, lo), hi) - lo) * scale

    lane = _STRIP_H + 2 + _JOB_H + _LANE_GAP
    body = []
    for row, (machine, jobs) in enumerate(spans.items()):
        y = row * lane
        job_y = y + _STRIP_H + 2
        body.append(
            _label(machine, job_y + 13)
            + f'<rect x="{_LABEL_W}" y="{y}" width="{span}" height="{lane - _LANE_GAP}" '
            'fill="#eef1f4"/>' + _strip((states or {}).get(machine, ()), y, x_of)
        )
        for start, end, customer, text in jobs:
            if end <= lo or start >= hi:
                continue  # another day's job (the timeline of one day)
            x = x_of(start)
            w = max(x_of(end) - x, 1.5)  # a short job stays visible
            body.append(
                f'<rect x="{x:.1f}" y="{job_y}" width="{w:.1f}" height="{_JOB_H}" '
                f'fill="{colour[customer]}"><title>{escape(text)}</title></rect>'
            )
    y = len(spans) * lane
    for t, label in ticks:
        x = x_of(t)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{y - _LANE_GAP}" stroke="#fff"/>'
            f'<text x="{x:.1f}" y="{y + 2}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    for t, text in marks:
        if lo <= t < hi:
            x = x_of(t)
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="-4" y2="{y - _LANE_GAP + 4}" '
                f'class="mark"><title>{escape(text)}</title></line>'
            )
    names = [*customers, "(unassigned)", *STATE_COLOURS]
    legend, bottom = _legend(
        names, y + 12, [*map(colour.get, customers), UNASSIGNED, *STATE_COLOURS.values()]
    )
    return _svg(bottom + 4, "".join(body) + legend, title, top=-6)
