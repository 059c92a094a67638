"""One simulated demo day shared by the agent tests (it is deterministic and read-only)."""

from __future__ import annotations

import pytest

from agent.shopday import ShopDay, simulate_shop_day


@pytest.fixture(scope="session")
def shop_day() -> ShopDay:
    """The demo shop's default day."""
    return simulate_shop_day()
