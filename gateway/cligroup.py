"""What every shopwatt command line shares: user errors as one line (exit 2), --config,
instants."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from gateway.errors import ShopwattError

INSTANT_HELP = "ISO 8601 with a UTC offset or Z, e.g. 2026-11-03T08:00:00+01:00"


def instant(_ctx: click.Context, param: click.Parameter, text: str | None) -> int | None:
    """click callback: an ISO 8601 time with offset -> UTC ms (a bad one names the option)."""
    if text is None:
        return None
    from gateway.inputs.csvfile import parse_time_ms  # the parser: not for `shopwatt run`

    try:
        return parse_time_ms(text)
    except ValueError as err:
        raise click.BadParameter(f"{text!r}: {err}", param=param) from None


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
