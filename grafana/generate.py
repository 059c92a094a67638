"""Generate the dashboards' JSON and their layout pictures from the builders.

`python -m grafana` writes grafana/dashboards/<uid>.json and grafana/layouts/<uid>.svg;
`python -m grafana --check` only compares and exits 1 when a committed file is stale.
The output depends on nothing but the code (no clock, sorted keys, panel ids by
position), so regenerating an unchanged board gives byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from grafana.boards import health, jobs, machine, overview
from grafana.layout import layout_svg

HERE = Path(__file__).resolve().parent
BOARDS = (overview, machine, jobs, health)
DEFAULT_CURRENCY = "EUR"  # shop.toml's default [site].currency


def render(board: dash.Dashboard) -> str:
    """A dashboard as Grafana's JSON, panels numbered top to bottom."""
    built = board.build()
    for number, panel in enumerate(built.panels or [], start=1):
        if isinstance(panel, model.Panel):
            panel.id_val = number
    return JSONEncoder(sort_keys=True, indent=2).encode(built) + "\n"


def generated(currency: str = DEFAULT_CURRENCY) -> dict[Path, str]:
    """Every generated file (path relative to grafana/) and its text."""
    files: dict[Path, str] = {}
    for module in BOARDS:
        text = render(module.build(currency))
        files[Path("dashboards") / f"{module.UID}.json"] = text
        files[Path("layouts") / f"{module.UID}.svg"] = layout_svg(json.loads(text))
    return files


def stale(files: dict[Path, str], root: Path = HERE) -> list[Path]:
    """The files under root whose content differs from what would be generated."""
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(rel)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, verify) the generated files; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m grafana", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument(
        "--currency",
        default=DEFAULT_CURRENCY,
        help="ISO code of shop.toml [site].currency, for the money units (default EUR)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default grafana/)")
    args = parser.parse_args(argv)
    files = generated(args.currency)
    if args.check:
        changed = stale(files, args.out)
        for rel in changed:
            print(f"stale: {args.out / rel} (run python -m grafana)", file=sys.stderr)
        return 1 if changed else 0
    for rel, text in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0
