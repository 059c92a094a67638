"""Which shop.toml settings a machine's rows depend on, as one comparable text.

The text is the sha256 of everything but the later tariff versions, then, per
[[tariff.version]], `;<valid_from>=<sha256 of the version>`. Comparing two of them tells
from which local day on the rows may differ: a new or changed version only touches the
days from its valid_from on (earlier days keep their prices).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from itertools import zip_longest
from typing import Any

from gateway.config import BILL_KEYS, ShopConfig, TariffRates

# Only what changes a number in the export. Names, meters, InfluxDB, storage: not here.
_MACHINE_KEYS = (
    "off_below_w",
    "run_above_w",
    "min_job_s",
    "merge_gap_s",
    "max_gap_s",
    "rated_w",
    "counter_resolution_wh",
    "cost",
)


def _sha256(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _rates(rates: TariffRates, exclude: set[str]) -> dict[str, Any]:
    """What of a tariff version prices rows; keys added since (spot) only when set, so a
    tariff that does not use them keeps its fingerprint."""
    unset = {"spot"} if rates.spot is None else set()
    return rates.model_dump(mode="json", exclude=exclude | BILL_KEYS | unset)


def fingerprint(cfg: ShopConfig, machine_id: str) -> str:
    """The time zone, currency, first tariff version and machine settings, then the versions.

    The bill-only tariff keys (demand and fixed charges, VAT) change no row: left out.
    [pricing] (what customers pay) is in the first part, where a shop has it.

    Without [[tariff.version]] it is the same sha256 as before versions existed, so an
    existing ledger stays current.
    """
    machine = cfg.machines[machine_id].model_dump(mode="json", include=set(_MACHINE_KEYS))
    document = {
        "timezone": cfg.site.timezone,
        "currency": cfg.site.currency,
        "tariff": _rates(cfg.tariff, {"version"}),
        "machine": machine,
    }
    if cfg.pricing.model_fields_set:
        # Only a shop that has [pricing]: the fingerprints of every other shop stay as
        # they were, so upgrading asks nobody for a recompute.
        document["pricing"] = cfg.pricing.model_dump(mode="json")
    versions = [
        f"{v.valid_from.isoformat()}={_sha256(_rates(v, set()))}" for v in cfg.tariff.version
    ]
    return ";".join([_sha256(document), *versions])


def changed_from(stored: str, current: str) -> date | None:
    """First local day whose rows may differ between two fingerprints; None: none does.

    date.min when anything but the later versions changed (every day may differ).
    """
    if stored == current:
        return None
    old, new = stored.split(";"), current.split(";")
    if old[0] != new[0]:
        return date.min
    # The first version that differs (added, removed, moved or repriced) and everything
    # after it; valid_from is the part before '=' (a date or a date-time: its day).
    k = next(k for k, (a, b) in enumerate(zip_longest(old, new, fillvalue="")) if a != b)
    starts = [v.partition("=")[0][:10] for v in (old[k : k + 1] + new[k : k + 1]) if v]
    return min(date.fromisoformat(s) for s in starts)


class Fingerprints:
    """Each machine's fingerprint under one shop.toml, computed once: hashing the settings
    costs more than a live batch's other work, and a live service asks every batch."""

    def __init__(self, cfg: ShopConfig) -> None:
        self._cfg = cfg
        self._prints: dict[str, str] = {}

    def __call__(self, machine_id: str) -> str:
        """fingerprint() of the machine."""
        if machine_id not in self._prints:
            self._prints[machine_id] = fingerprint(self._cfg, machine_id)
        return self._prints[machine_id]
