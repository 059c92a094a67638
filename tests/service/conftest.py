"""Fixtures of the service tests (the servers themselves come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from agent.serviceshop import BROKER_CONFIG
from tests.servers import Mosquitto, ServerPool


@pytest.fixture
def broker(servers: ServerPool) -> Mosquitto:
    """A broker of the test's own, configured as docs/deploy.md tells users to."""
    return servers.mosquitto(BROKER_CONFIG)
