"""Uptime that never wraps and UTC time once synced, from the chip's wrapping tick counter."""

from .hal import Hal


class Clock:
    """Call uptime() at least every few days (every window does): ticks wrap after ~12 days."""

    def __init__(self, hal: Hal) -> None:
        self._hal = hal
        self._last = hal.ticks_ms()
        self._up = 0
        self._sync_utc: int | None = None
        self._sync_up = 0
        self.syncs = 0

    def uptime(self) -> int:
        """Milliseconds since the sensor started."""
        now = self._hal.ticks_ms()
        self._up += self._hal.ticks_diff(now, self._last)
        self._last = now
        return self._up

    def sync(self, utc_ms: int) -> None:
        """Anchor UTC: utc_ms is the time right now."""
        self._sync_up = self.uptime()
        self._sync_utc = utc_ms
        self.syncs += 1

    def utc(self, up_ms: int) -> int | None:
        """UTC ms at uptime up_ms, or None before the first sync."""
        if self._sync_utc is None:
            return None
        return self._sync_utc + up_ms - self._sync_up
