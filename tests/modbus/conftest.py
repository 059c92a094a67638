"""Fixtures for the Modbus tests (helpers live in modbus_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.modbus.modbus_helpers import SocatPtyPair


@pytest.fixture
def rs485() -> Iterator[SocatPtyPair]:
    """A serial line: serve meters on `.meter_end`, point the gateway at `.gateway_end`."""
    with SocatPtyPair() as pair:
        yield pair
