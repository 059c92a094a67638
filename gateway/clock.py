"""The wall clock, read in one place: UTC milliseconds, the unit of every timestamp inside."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Now as UTC milliseconds since the epoch (integer arithmetic: no float rounding)."""
    return time.time_ns() // 1_000_000
