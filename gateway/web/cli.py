"""`shopwatt web`: serve the shop's web page; `shopwatt web user add` adds a user."""

from __future__ import annotations

import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cligroup import UserErrorGroup, config_option
from gateway.config import load_config
from gateway.errors import ConfigError, ShopwattError
from gateway.ledger import Ledger
from gateway.ledger.ledger import os_user
from gateway.ledger.users import ROLES, User, check_name, check_role, put_user

_file = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.group(cls=UserErrorGroup, invoke_without_command=True)
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--tls-cert", type=_file, help="Serve HTTPS with this certificate (PEM) ...")
@click.option("--tls-key", type=_file, help="... and its key, e.g. the broker's server.crt/.key.")
@click.pass_context
def web(
    ctx: click.Context,
    config_path: Path,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """The shop's web page: floor, jobs, members, month, health, users (docs/web.md)."""
    if ctx.invoked_subcommand is not None:
        return
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    # Imported here: `shopwatt web user add` and every other command run without them.
    try:
        import uvicorn

        from gateway.web.app import WebState, build_app
    except ImportError as err:
        raise _without_extra(err) from None

    cfg = load_config(config_path)
    app = build_app(WebState(cfg, https=tls_cert is not None))
    # Bound here, not by uvicorn: a taken port is then one error line (exit 2), not a log.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: {err.strerror or err}") from None
    config = uvicorn.Config(
        app,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level="warning",  # access lines would log every tablet refresh
        server_header=False,
    )
    scheme = "https" if tls_cert else "http"
    click.echo(f"shopwatt web: {scheme}://{host}:{port}/ (site {cfg.site.id})", err=True)
    uvicorn.Server(config).run(sockets=[sock])


def _without_extra(err: ImportError) -> ShopwattError:
    """The one line a Pi installed without the `web` extra gets (docs/deploy.md)."""
    why = "needs the web page's packages: pip install 'shopwatt[web]'"
    return ShopwattError(f"`shopwatt web` {why} ({err})")


@web.group()
def user() -> None:
    """Who may log in to the web page."""


@user.command("add")
@click.argument("name")
@config_option
@click.option("--role", type=click.Choice(ROLES), required=True)
def user_add(name: str, config_path: Path, role: str) -> None:
    """Add a user (or set a new password and role): the password from a prompt or stdin."""
    try:
        from gateway.web.auth import MIN_PASSWORD, hash_password  # argon2: only here
    except ImportError as err:
        raise _without_extra(err) from None

    check_name(name)
    cfg = load_config(config_path)
    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise ShopwattError(f"password for {name}: at least {MIN_PASSWORD} characters")
    ledger = Ledger(cfg)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    new = put_user(
        ledger.path, User(name, check_role(role), hash_password(password)), at, os_user()
    )
    click.echo(f"{'added' if new else 'changed'} {name} ({role}) in {ledger.path}")
