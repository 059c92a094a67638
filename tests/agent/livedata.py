"""The one-hour live shop shared by the live tests (tests/agent/data/)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

DATA = Path(__file__).parent / "data"
PLAN = DATA / "live-shop.toml"  # three machines: an outage, a booked job, a reboot
SCHEDULE = DATA / "live-jobs.csv"
DAY = dt.date(2026, 11, 17)
