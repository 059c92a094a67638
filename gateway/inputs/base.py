"""The live-input contract: one small interface for every input.

An input (MQTT, Modbus, ...) runs on its own threads, turns what it receives or polls into
`Reading`s (a type of the engine's model: the outputs format them too) and hands each one
to the `sink` it was started with. Everything it had to drop, reject or retry is a counter
in `stats()`, so health reporting never needs to know which kind of input it is looking at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.engine.model import Reading, Stats

# Called from the input's own threads: it must be thread-safe and return quickly.
Sink = Callable[[Reading], None]


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
