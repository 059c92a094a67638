"""Own solar covers the machines first, pro rata: tests/cases/solar/README.md's shares."""

from __future__ import annotations

import numpy as np

from gateway.engine.solar import covered_share


def test_production_covers_the_machines_first_and_each_pro_rata() -> None:
    machines = np.array([500.0, 1750.0, 2000.0, 750.0, 0.0])
    production = np.full(5, 1000.0)
    share = covered_share(machines, production)
    np.testing.assert_allclose(share, [1.0, 4 / 7, 0.5, 1.0, 0.0])


def test_no_production_covers_nothing() -> None:
    assert covered_share(np.array([100.0]), np.array([0.0])).tolist() == [0.0]
