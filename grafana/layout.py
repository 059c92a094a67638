"""A picture of a dashboard's layout (SVG), drawn from its JSON, for docs/dashboards.md.

Grafana places panels on a 24-column grid whose rows are 30 px high; the picture keeps
those proportions so it looks like the dashboard with every panel still loading. Each
box names the panel, its kind, and its own time range where it overrides the picker's.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

COL_PX, ROW_PX, GAP_PX, MARGIN_PX, HEADER_PX = 40, 30, 6, 12, 54
CHAR_PX = 7.2  # mean width of a 12 px sans-serif character: where titles get cut

KINDS = {
    "stat": ("number", "#e3f2fd"),
    "bargauge": ("bar per machine", "#e8f5e9"),
    "state-timeline": ("state timeline", "#fff8e1"),
    "timeseries": ("graph", "#ede7f6"),
    "table": ("table", "#f3f3f3"),
    "barchart": ("bar chart", "#e0f7fa"),
    "piechart": ("pie", "#fce4ec"),
}
TIME_LABELS = {"now/d": "today", "now/M": "this month", "5m": "last 5 min", "7d": "last 7 days"}
PICKER_LABELS = {"now/d": "today so far", "now/M": "this month so far", "now-24h": "last 24 hours"}
INK = "#90a4ae"


def _sketch(kind: str, x: float, y: float, w: float, h: float) -> list[str]:
    """A hint of what the panel draws, inside its box (x, y, w, h: the free area)."""
    if kind == "stat":
        return [
            f'<text x="{x + w / 2}" y="{y + h / 2 + 9}" font-size="26" fill="{INK}" '
            'text-anchor="middle">123</text>'
        ]
    if kind in ("bargauge", "barchart"):
        step = h / 4
        return [
            f'<rect x="{x}" y="{y + i * step + step * 0.2:.1f}" width="{w * f:.1f}" '
            f'height="{step * 0.6:.1f}" fill="{INK}"/>'
            for i, f in enumerate((0.8, 0.45, 0.65, 0.25))
        ]
    if kind == "state-timeline":
        step = h / 3
        colours = ("#66bb6a", "#ffca28", "#bdbdbd")
        return [
            f'<rect x="{x + w * a:.1f}" y="{y + i * step + step * 0.15:.1f}" '
            f'width="{w * (b - a):.1f}" height="{step * 0.7:.1f}" fill="{colours[(i + j) % 3]}"/>'
            for i in range(3)
            for j, (a, b) in enumerate(((0.0, 0.3), (0.3, 0.55), (0.55, 1.0)))
        ]
    if kind == "timeseries":
        ys = (0.7, 0.4, 0.55, 0.2, 0.5, 0.3, 0.6)
        points = " ".join(
            f"{x + w * i / (len(ys) - 1):.1f},{y + h * v:.1f}" for i, v in enumerate(ys)
        )
        return [f'<polyline points="{points}" fill="none" stroke="{INK}" stroke-width="2"/>']
    if kind == "table":
        rows = int(h // 18)
        return [
            f'<line x1="{x}" y1="{y + i * 18:.1f}" x2="{x + w}" y2="{y + i * 18:.1f}" '
            f'stroke="{INK}"/>'
            for i in range(1, rows)
        ]
    if kind == "piechart":
        r = min(w, h) / 2
        return [
            f'<circle cx="{x + w / 2}" cy="{y + h / 2}" r="{r:.1f}" fill="none" '
            f'stroke="{INK}" stroke-width="{r / 2.5:.1f}"/>'
        ]
    return []


def _fit(text: str, width_px: float) -> str:
    """The text, cut with an ellipsis where it would overflow width_px."""
    room = int(width_px / CHAR_PX)
    return text if len(text) <= room else text[: max(room - 1, 1)] + "…"


def _panel(panel: dict[str, Any]) -> str:
    grid = panel["gridPos"]
    x = MARGIN_PX + grid["x"] * COL_PX
    y = HEADER_PX + grid["y"] * ROW_PX
    w = grid["w"] * COL_PX - GAP_PX
    h = grid["h"] * ROW_PX - GAP_PX
    kind, fill = KINDS.get(panel["type"], (panel["type"], "#ffffff"))
    parts = [
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{fill}" stroke="#9e9e9e"/>',
        f'<text x="{x + 8}" y="{y + 19}" font-size="12" font-weight="bold">'
        f"{escape(_fit(panel['title'], w - 16))}</text>",
        f'<text x="{x + 8}" y="{y + h - 8}" font-size="11" fill="#616161">{kind}</text>',
    ]
    parts += _sketch(panel["type"], x + 14, y + 30, w - 28, h - 52)
    when = TIME_LABELS.get(panel.get("timeFrom", ""))
    if when:
        parts.append(
            f'<text x="{x + w - 8}" y="{y + h - 8}" font-size="11" fill="#1565c0" '
            f'text-anchor="end">{when}</text>'
        )
    return "\n".join(parts)


def layout_svg(board: dict[str, Any]) -> str:
    """The SVG of one dashboard's panel grid."""
    panels = board.get("panels", [])
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    width = 2 * MARGIN_PX + 24 * COL_PX - GAP_PX
    height = HEADER_PX + rows * ROW_PX + MARGIN_PX
    variables = [v["name"] for v in board.get("templating", {}).get("list", [])]
    picker = board.get("time", {}).get("from", "")
    subtitle = "   ".join([*(f"${v}" for v in variables), PICKER_LABELS.get(picker, picker)])
    body = "\n".join(_panel(p) for p in panels)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
        f'<text x="{MARGIN_PX}" y="24" font-size="17" font-weight="bold">'
        f"{escape(board['title'])}</text>\n"
        f'<text x="{MARGIN_PX}" y="43" font-size="12" fill="#616161">{escape(subtitle)}</text>\n'
        f"{body}\n</svg>\n"
    )
