"""The shop's own solar production: which share of the machines' energy it covers."""

from __future__ import annotations

import numpy as np

from gateway.engine.model import F64


def covered_share(machines_wh: F64, production_wh: F64) -> F64:
    """Per interval, the share of the machines' energy that own production covers:
    min(production, machines) / machines, 0 where the machines used nothing.

    Production covers the machines first (only the rest is fed in), and every machine
    alike: each one's energy in the interval times the same share, i.e. pro rata.
    """
    machines = np.asarray(machines_wh, dtype=np.float64)
    covered = np.minimum(np.clip(production_wh, 0.0, None), machines)
    share = np.zeros(len(machines))
    np.divide(covered, machines, out=share, where=machines > 0.0)
    return share
