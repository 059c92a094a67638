"""What every shopwatt command line shares: user errors as one line (exit 2), --config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from gateway.errors import ShopwattError


class OnceCommand(click.Command):
    """A command whose single-valued options may be given once: a repeat is an error.

    click keeps the last of a repeated option silently; `replay --input a.csv --input
    b.csv` would then load only b.csv while the user believes both are in the ledger.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A first parse only to see each option in the order given (click's own parse
        # keeps the last value); it has no side effects and fails as the real one would.
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        seen: set[str | None] = set()
        for param in order:
            if isinstance(param, click.Option) and not (param.multiple or param.count):
                if param.name in seen:
                    raise click.UsageError(f"{param.opts[0]} given more than once", ctx)
                seen.add(param.name)
        return super().parse_args(ctx, args)


class UserErrorGroup(click.Group):
    """Turns a ShopwattError or a wrong command line into one clear line and exit code 2."""

    program: ClassVar[str] = "shopwatt"  # what the error line starts with
    command_class = OnceCommand
    group_class = type  # a nested group (`shopwatt readings`) is one of these too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShopwattError as err:
            click.echo(f"{self.program}: error: {err}", err=True)
            sys.exit(2)
        except click.UsageError as err:
            # click would print the usage and a hint over several lines; one line says it.
            # The program's own name first, then the sub-commands (`shopwatt readings drop`).
            where = " ".join([self.program, *(err.ctx.command_path.split()[1:] if err.ctx else [])])
            click.echo(f"{where}: error: {err.format_message()} (see --help)", err=True)
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
