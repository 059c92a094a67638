"""`shopwatt` command line: one sub-command per job a user has."""

from __future__ import annotations

import sys
from typing import Any

import click

from gateway import __version__
from gateway.errors import ShopwattError


class _Group(click.Group):
    """Turns a ShopwattError into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShopwattError as err:
            click.echo(f"shopwatt: error: {err}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="shopwatt")
def main() -> None:
    """shopwatt: per-job energy and machine costs for micro-factories."""
