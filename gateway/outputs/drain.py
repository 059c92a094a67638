"""The drainer: moves lines from the outbox to InfluxDB, batch by batch, oldest first.

What InfluxDB answers decides what happens to a batch:
- 2xx: acknowledged, the lines leave the outbox.
- 413 (too large): split in halves and send each; later batches stay at the smaller size.
- 400/422 (bad data): split until the rejected lines stand alone; those go to the
  dead-letter table, the rest is delivered. A bad line never blocks the queue.
- 429/503 and every other answer (5xx, 401/403/404 misconfiguration, no answer at all):
  nothing leaves the outbox; wait (Retry-After when given, else exponential backoff with
  jitter) and send the same lines again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.clock import now_ms
from gateway.config import OUTBOX_FILE, ShopConfig
from gateway.counted import counted
from gateway.errors import ConfigError
from gateway.outputs.influxdb import Writer, WriteResult, open_writer
from gateway.outputs.lineprotocol import FieldValue
from gateway.outputs.outbox import DeadLine, Outbox, OutboxError

log = logging.getLogger("shopwatt.influxdb")

TOO_LARGE = 413
BAD_DATA = frozenset({400, 422})
RETRY_AFTER_CAP_S = 3600.0  # a Retry-After beyond an hour is a misconfigured proxy
_LOG_EVERY_S = 300.0


@dataclass
class DrainStats:
    """The writer's side of the health metrics."""

    requests: int = 0
    failures: int = 0  # requests that will be retried
    consecutive_failures: int = 0
    last_status: int = 0
    last_error: str = ""
    last_ok_ms: int = 0  # when InfluxDB last acknowledged a batch (UTC ms), 0: never

    def fields(self) -> dict[str, FieldValue]:
        """The `gateway` measurement fields (writer_*)."""
        return {
            "writer_requests": self.requests,
            "writer_failures": self.failures,
            "writer_consecutive_failures": self.consecutive_failures,
            "writer_last_status": self.last_status,
            "writer_last_ok_ms": self.last_ok_ms,
        }


@dataclass
class _Pass:
    """What sending one batch achieved before it finished or hit a retryable failure."""

    acked: list[tuple[int, int]] = field(default_factory=list)
    dead: list[DeadLine] = field(default_factory=list)
    failure: WriteResult | None = None


class Drainer:
    """Drains one outbox through one writer; `start()` runs it on a thread."""

    def __init__(
        self,
        outbox: Outbox,
        writer: Writer,
        batch_lines: int = 5000,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        rng: random.Random | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.outbox, self.writer = outbox, writer
        self.batch_lines = batch_lines
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._rng = rng or random.Random()
        self._clock_ms = clock_ms
        self.stats = DrainStats()
        self._pending: _Pass | None = None  # acknowledged, not yet deleted from the outbox
        self._settled_below = 0  # ...the ids up to this one: the next peek starts after
        self._prefetched: list[tuple[int, bytes]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_log_s = -_LOG_EVERY_S

    # -- one batch ----------------------------------------------------------------------
    def drain_once(self) -> float:
        """Send the oldest batch; returns how long to wait before the next one (s).

        Pipelined: while InfluxDB works on batch k, the outbox deletes batch k-1 (already
        acknowledged) and reads batch k+1, so the disk work hides behind the network.
        A crash in between only means acknowledged lines are sent again, which
        InfluxDB overwrites.
        """
        items = self._prefetched or self.outbox.peek(self.batch_lines, self._settled_below)
        self._prefetched = []
        if not items:
            self.flush()
            return 0.0
        result = _Pass()
        errors: list[OutboxError] = []

        def meanwhile() -> None:
            try:
                self.flush()
                self._prefetched = self.outbox.peek(self.batch_lines, items[-1][0])
            except OutboxError as err:  # raised below, once the answer has been read
                errors.append(err)

        self._send(items, result, meanwhile)
        if errors:
            raise errors[0]
        if result.dead:
            log.warning(
                "InfluxDB rejected %s, moved to the outbox's dead_letter table; first: %d %s",
                counted(len(result.dead), "line"),
                result.dead[0].status,
                result.dead[0].reason,
            )
        if result.failure is not None:
            self._prefetched = []  # start again from the oldest line after the wait
            self.outbox.settle(result.acked, result.dead)
            return self._failed(result.failure)
        self._pending, self._settled_below = result, items[-1][0]
        if self.stats.consecutive_failures:
            log.info(
                "InfluxDB accepts writes again after %s",
                counted(self.stats.consecutive_failures, "failed attempt"),
            )
            self.stats.consecutive_failures = 0
        return 0.0

    def flush(self) -> None:
        """Delete the acknowledged batch that is still in the outbox (stop() does it too)."""
        pending, self._pending, self._settled_below = self._pending, None, 0
        if pending is not None:
            self.outbox.settle(pending.acked, pending.dead)

    def _send(
        self, items: list[tuple[int, bytes]], result: _Pass, meanwhile: Callable[[], None] | None
    ) -> bool:
        """Send items, splitting on 413/400; False when a retryable failure stopped it."""
        answer = self.writer.write(b"\n".join(line for _, line in items), meanwhile)
        self.stats.requests += 1
        self.stats.last_status = answer.status
        if answer.ok:
            result.acked.append((items[0][0], items[-1][0]))
            self.stats.last_ok_ms = self._clock_ms()
            return True
        # Only these two are about the lines themselves; a missing database, bucket or
        # token (404/401/403, 1.x: 500 for a missing retention policy) is retried, never
        # dead-lettered, so a misconfiguration delays data instead of discarding it.
        if answer.status != TOO_LARGE and answer.status not in BAD_DATA:
            result.failure = answer
            return False
        if len(items) == 1:
            row_id, line = items[0]
            result.dead.append(DeadLine(row_id, line, answer.status, answer.message))
            return True
        if answer.status == TOO_LARGE and len(items) <= self.batch_lines:
            self.batch_lines = max(1, len(items) // 2)
            log.warning(
                "InfluxDB: 413 for %s, batches now %s",
                counted(len(items), "line"),
                counted(self.batch_lines, "line"),
            )
        half = len(items) // 2
        return self._send(items[:half], result, None) and self._send(items[half:], result, None)

    def _failed(self, answer: WriteResult) -> float:
        """Count a failure; the wait: Retry-After if given, else backoff with jitter."""
        s = self.stats
        s.failures += 1
        s.consecutive_failures += 1
        s.last_error = f"{answer.status} {answer.message}".strip()
        if answer.retry_after_s is not None:
            delay = min(answer.retry_after_s, RETRY_AFTER_CAP_S) * self._rng.uniform(1.0, 1.1)
        else:
            # "Equal jitter": half fixed, half random, so many gateways that lost the
            # same server do not come back in lockstep.
            step = min(
                self.backoff_max_s, self.backoff_initial_s * 2 ** (s.consecutive_failures - 1)
            )
            delay = step / 2 + self._rng.uniform(0, step / 2)
        now = time.monotonic()
        if s.consecutive_failures == 1 or now - self._last_log_s >= _LOG_EVERY_S:
            self._last_log_s = now
            log.warning(
                "InfluxDB write failed (%s, %d in a row, %s waiting); retry in %.1f s",
                s.last_error or "no answer",
                s.consecutive_failures,
                counted(self.outbox.depth, "line"),
                delay,
            )
        return delay

    # -- running ------------------------------------------------------------------------
    def run(self) -> None:
        """Drain until stop() (the thread's body); waits for lines when the outbox is empty."""
        while not self._stop.is_set():
            if self._pending is None and not self.outbox.wait(timeout_s=1.0):
                continue
            try:
                delay = self.drain_once()
            except OutboxError as err:  # e.g. the disk is full: keep the thread, say so
                log.error("%s; retrying in %.0f s", err, self.backoff_max_s)
                delay = self.backoff_max_s
            if delay:
                self._stop.wait(delay)

    def start(self) -> None:
        """Run on a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="influxdb-drain", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the thread after its current batch and close the writer (start() reopens)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush()
        self.writer.close()


def open_influx_output(cfg: ShopConfig) -> tuple[Outbox, Drainer]:
    """The outbox (storage folder/outbox.db) and its drainer as [influxdb] configures them.

    The caller puts lines into the outbox, calls drainer.start() once, and at shutdown
    drainer.stop() then outbox.close(). Raises ConfigError without [influxdb].
    """
    influx = cfg.influxdb
    if influx is None:
        raise ConfigError(f"{cfg.source}: [influxdb]: section missing, nothing to write to")
    writer = open_writer(influx, cfg.source.parent)
    outbox = Outbox(cfg.storage_dir / OUTBOX_FILE, max_bytes=int(influx.outbox_max_mb * 2**20))
    drainer = Drainer(
        outbox, writer, batch_lines=influx.batch_lines, backoff_max_s=influx.backoff_max_s
    )
    return outbox, drainer
