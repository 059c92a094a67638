"""The export as a readable text table (the demo prints it)."""

from __future__ import annotations

from decimal import Decimal

from gateway.export.table import Table

_SHOWN = (
    ("job_id", "job"),
    ("machine", "machine"),
    ("customer", "customer"),
    ("start", "start"),
    ("end", "end"),
    ("run_h", "run h"),
    ("energy_kwh", "kWh"),
    ("energy_cost", "energy"),
    ("depreciation_cost", "wear"),
    ("maintenance_cost", "maint."),
    ("total_cost", "total"),
)


def _cell(name: str, value: str | Decimal) -> str:
    if name in ("start", "end"):
        return str(value)[11:16]  # local HH:MM; the date is in the export files
    return str(value)


def columns(rows: list[list[str]]) -> str:
    """Rows of text as aligned columns (the first row: the header)."""
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def render_text(table: Table) -> str:
    """Jobs first, then overhead and adjustments, then the totals; amounts right-aligned."""
    kinds = table.column("kind")
    order = sorted(range(len(table.lines)), key=lambda k: (kinds[k] != "job", k))
    idx = [table.header.index(name) for name, _ in _SHOWN]
    body = [
        [_cell(name, table.lines[k][i]) for (name, _), i in zip(_SHOWN, idx, strict=True)]
        for k in order
    ]
    start, end = _SHOWN.index(("start", "start")), _SHOWN.index(("end", "end"))
    for k, line in zip(order, body, strict=True):
        if kinds[k] != "job":
            # A whole local day (or a correction of one): its date says more than 00:00-00:00.
            line[0] = f"({kinds[k]})"
            line[start] = str(table.lines[k][idx[start]])[:10]
            line[end] = ""
    numeric = {n for n, _ in _SHOWN if n.endswith(("_h", "_kwh", "_cost"))}
    totals = [
        str(sum((Decimal(v) for v in table.column(name)), Decimal(0))) if name in numeric else ""
        for name, _ in _SHOWN
    ]
    totals[0] = f"total ({table.currency})"
    rows = [[label for _, label in _SHOWN], *body, totals]
    widths = [max(len(r[k]) for r in rows) for k in range(len(_SHOWN))]
    right = [name in numeric for name, _ in _SHOWN]

    def fmt(r: list[str]) -> str:
        cells = [
            v.rjust(w) if rt else v.ljust(w) for v, w, rt in zip(r, widths, right, strict=True)
        ]
        return "  ".join(cells).rstrip()

    rule = "-" * len(fmt(rows[0]))
    return "\n".join([fmt(rows[0]), rule, *map(fmt, body), rule, fmt(totals)])
