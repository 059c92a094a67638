"""A machine named by an option, checked against shop.toml: one rule and one message for
the ledger's commands and for provisioning (which opens no ledger)."""

from __future__ import annotations

from gateway.config import ShopConfig
from gateway.errors import LedgerError, ShopwattError


def check_machine(cfg: ShopConfig, name: str, error: type[ShopwattError] = LedgerError) -> str:
    """The machine --machine names, if shop.toml has it; else `error` listing them."""
    if name not in cfg.machines:
        raise error(
            f"--machine = {name!r}: not a machine in {cfg.source} "
            f"(known: {', '.join(cfg.machines)})"
        )
    return name
