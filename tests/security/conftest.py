"""Fixtures: a provisioned shop folder and its real, provisioned mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import Clients, write_shop

from agent.localservers import ProvisionedBroker
from tests.servers import ServerError

_BROKER_FIXTURES = {"broker", "tls_broker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a provisioned broker need mosquitto, like the `services` ones."""
    for item in items:
        if _BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh shop.toml (s1 on cnc-01, s2 on lathe-01) with [mqtt] credentials."""
    return write_shop(tmp_path)


def _started(broker: ProvisionedBroker) -> ProvisionedBroker:
    try:
        return broker.start()
    except ServerError as err:
        broker.close()
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def broker(shop: Path) -> Iterator[ProvisionedBroker]:
    """The shop's broker, provisioned with a plain loopback listener, running."""
    server = _started(ProvisionedBroker(shop))
    yield server
    server.close()


@pytest.fixture
def tls_broker(shop: Path) -> Iterator[ProvisionedBroker]:
    """The shop's broker with only a TLS listener (local CA), running."""
    server = _started(ProvisionedBroker(shop, tls=True, plain=False))
    yield server
    server.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    """clients(port, user, password, ca=None) -> a connected Client; all closed after."""
    made = Clients()
    yield made
    made.close()
