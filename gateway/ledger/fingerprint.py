"""Which shop.toml settings a machine's rows depend on, as one comparable hash."""

from __future__ import annotations

import hashlib
import json

from gateway.config import ShopConfig

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


def fingerprint(cfg: ShopConfig, machine_id: str) -> str:
    """sha256 of the time zone, currency, tariff, the machine's costing settings, prices."""
    machine = cfg.machines[machine_id].model_dump(mode="json", include=set(_MACHINE_KEYS))
    document = {
        "timezone": cfg.site.timezone,
        "currency": cfg.site.currency,
        "tariff": cfg.tariff.model_dump(mode="json"),
        "machine": machine,
    }
    if cfg.pricing.model_fields_set:
        # Only a shop that has [pricing]: the fingerprints of every other shop stay as
        # they were, so upgrading asks nobody for a recompute.
        document["pricing"] = cfg.pricing.model_dump(mode="json")
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
