"""What every shopwatt command line shares: user errors as one line (exit 2), --config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from gateway.errors import ShopwattError


class UserErrorGroup(click.Group):
    """Turns a ShopwattError into one clear line and exit code 2, never a traceback."""

    program: ClassVar[str] = "shopwatt"  # what the error line starts with

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShopwattError as err:
            click.echo(f"{self.program}: error: {err}", err=True)
            sys.exit(2)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("shop.toml"),
    show_default=True,
    envvar="SHOPWATT_CONFIG",
    help="The shop's shop.toml (also $SHOPWATT_CONFIG).",
)
