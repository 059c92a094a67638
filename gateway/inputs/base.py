"""The live-input contract: one reading record and one small interface for every input.

An input (MQTT, Modbus, ...) runs on its own threads, turns what it receives or polls into
`Reading`s and hands each one to the `sink` it was started with. Everything it had to drop,
reject or retry is a counter in `stats()`, so health reporting never needs to know which
kind of input it is looking at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reading:
    """One machine's power and energy at one instant, as one input saw it."""

    machine: str  # machine id from shop.toml
    sensor: str  # sensor / meter id, unique in the shop (the InfluxDB `sensor` tag)
    t_ms: int  # UTC, milliseconds since the epoch: when the value was measured (or polled)
    watts: float | None  # active power in W; None when this reading could not refresh it
    wh: float | None  # cumulative energy counter in Wh; None when not carried or not refreshed
    # True when a value this source normally carries could not be refreshed: the missing
    # value is None, never the previous one repeated (a repeated value would look like a
    # machine holding steady power while the meter is actually unreachable).
    stale: bool = False
    source: str = ""  # which input and device produced it, e.g. "modbus:tcp:10.0.0.5:502/1"


# Called from the input's own threads: it must be thread-safe and return quickly.
Sink = Callable[[Reading], None]

# Counters per source (a device, a sensor, or the input itself), e.g.
# {"modbus:tcp:10.0.0.5:502/1": {"polls": 120, "transport_errors": 3, ...}}.
Stats = Mapping[str, Mapping[str, int]]


class Input(Protocol):
    """A live input: started once with a sink, stopped once, inspectable at any time."""

    def start(self, sink: Sink) -> None:
        """Begin delivering readings to `sink`; returns at once (work runs on threads)."""
        ...

    def stop(self) -> None:
        """Stop all threads and close connections; no sink call happens after it returns."""
        ...

    def stats(self) -> Stats:
        """A snapshot of the counters: readings delivered, errors by kind, per source."""
        ...
