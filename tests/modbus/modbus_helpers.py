"""Modbus test helpers: a socat pty pair as an RS485 bus, a shop.toml with meters, a sink.

The simulated meters (agent.modbus_meter) are real pymodbus servers on 127.0.0.1 free
ports or on one end of a socat pty pair; the gateway's client opens the other end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ShopConfig, parse_config
from gateway.engine.model import Reading
from gateway.meters.maps import MeterMap, load_map, map_path
from tests.servers import ServerProcess, find_binary

WAIT_S = 30.0  # how long a test waits for an expected reading before it fails (never asserted)


class SocatPtyPair(ServerProcess):
    """Two linked pseudo-terminals: what one end writes, the other reads (a 2-node bus)."""

    name = "socat"

    def _pick_ports(self) -> None:
        self.meter_end = self.workdir / "meter-tty"
        self.gateway_end = self.workdir / "gateway-tty"

    def _argv(self) -> list[str]:
        return [
            find_binary("socat"),
            f"pty,raw,echo=0,link={self.meter_end}",
            f"pty,raw,echo=0,link={self.gateway_end}",
        ]

    def _ready(self) -> bool:
        return self.meter_end.exists() and self.gateway_end.exists()


class Collector:
    """A thread-safe sink that lets a test wait for the readings it expects."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self._cond = threading.Condition()

    def __call__(self, reading: Reading) -> None:
        with self._cond:
            self.readings.append(reading)
            self._cond.notify_all()

    def of(self, sensor: str) -> list[Reading]:
        """Readings of one meter so far."""
        with self._cond:
            return [r for r in self.readings if r.sensor == sensor]

    def wait_for(self, what: str, ok: Callable[[list[Reading]], bool]) -> list[Reading]:
        """Block until ok(readings) holds; fail the test (with what it waited for) if never."""
        with self._cond:
            if not self._cond.wait_for(lambda: ok(self.readings), WAIT_S):
                pytest.fail(f"waited {WAIT_S} s for {what}; got {self.readings[-5:]}")
            return list(self.readings)


def shipped_map(model: str) -> MeterMap:
    """A register map shipped in gateway/meters/ (sdm630, pzem004t, ...)."""
    return load_map(map_path(model, Path.cwd()))


def fresh(sensor: str, n: int) -> Callable[[list[Reading]], bool]:
    """Condition: at least n fresh readings of `sensor`."""
    return lambda rs: sum(r.sensor == sensor and not r.stale for r in rs) >= n


def stale(sensor: str, n: int) -> Callable[[list[Reading]], bool]:
    """Condition: at least n stale readings of `sensor`."""
    return lambda rs: sum(r.sensor == sensor and r.stale for r in rs) >= n


def shop_with_meters(tmp_path: Path, meters: dict[str, list[dict[str, Any]]]) -> ShopConfig:
    """A minimal valid shop.toml whose machines carry the given [[machine.meter]] tables."""
    data = {
        "site": {"id": "test-shop", "timezone": "UTC"},
        "tariff": {"id": "flat", "rate": 0.3},
        "machine": [
            {
                "id": machine,
                "off_below_w": 5,
                "run_above_w": 50,
                "rated_w": 10_000,
                "cost": {"purchase": 1000, "life_hours": 1000},
                "meter": tables,
            }
            for machine, tables in meters.items()
        ],
    }
    return parse_config(data, tmp_path / "shop.toml")


# Fast polling so a test sees many polls in well under a second of normal operation.
FAST = {"poll_s": 0.05, "timeout_s": 0.2, "retries": 1, "backoff_max_s": 0.4}
