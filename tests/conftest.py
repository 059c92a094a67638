"""Shared fixtures: real servers on free 127.0.0.1 ports, always stopped by PID.

- `influxd`: one influxd for the whole session. Use it with `influx_db` (a fresh database
  per test). Never stop or kill it: other tests share it.
- `mosquitto`: a broker of the test's own (starting one takes milliseconds).
- `servers`: a pool for tests that need more, or that stop/kill/restart servers
  (`servers.influxd()`, `servers.mosquitto(extra_config=...)`, `servers.http(handler)`,
  `servers.v2_front(influxd)`); everything it started is closed after the test.

Tests that use any of these are marked `services` automatically (`pytest -m "not
services"` runs the rest). A missing binary fails the test with the command that
installs it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

# The repository root, so `from tests.servers import ...` works in every test folder
# (the editable install only maps the `gateway` and `agent` packages).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import Influxd, Mosquitto, ServerPool

_SERVER_FIXTURES = {"influxd", "influx_db", "mosquitto", "servers"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a real server as `services`."""
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


@pytest.fixture
def servers() -> Iterator[ServerPool]:
    """A pool of servers that belong to this test only."""
    pool = ServerPool(on_error=_fail)
    yield pool
    pool.close()


@pytest.fixture
def mosquitto(servers: ServerPool) -> Mosquitto:
    """A running broker of this test's own (anonymous, persistent across restart)."""
    return servers.mosquitto()


@pytest.fixture(scope="session")
def influxd() -> Iterator[Influxd]:
    """The session's shared influxd: query and write, never stop it."""
    pool = ServerPool(on_error=_fail)
    try:
        yield pool.influxd()
    finally:
        pool.close()


_db_numbers = itertools.count(1)


@pytest.fixture
def influx_db(influxd: Influxd) -> Iterator[str]:
    """A fresh, empty database on the shared influxd; dropped after the test."""
    name = influxd.create_database(f"test_{next(_db_numbers)}")
    yield name
    influxd.drop_database(name)
