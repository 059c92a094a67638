"""The calendar of a span of local days: midnights and the tariff's band timeline (UTC ms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import DAYS, Tariff
from gateway.engine.localtime import local_minute_to_utc_ms
from gateway.engine.model import I64

_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local days first_day..last_day of one time zone, and which band holds each instant."""

    first_day: date
    midnights: I64  # local midnight starting each day, plus the one ending the last day
    band_edges: I64  # sorted instants where the band may change
    band_labels: I64  # band index (0 = standard) from band_edges[k] to band_edges[k + 1]

    @property
    def days(self) -> list[date]:
        """The local dates, in order."""
        return [self.first_day + timedelta(days=k) for k in range(len(self.midnights) - 1)]

    def day_index(self, t_ms: I64) -> I64:
        """Index of the local day holding each instant."""
        return np.searchsorted(self.midnights, t_ms, side="right") - 1

    def band_index(self, t_ms: I64) -> I64:
        """Tariff band (index into Tariff.band_names) in force at each instant."""
        k = np.searchsorted(self.band_edges, t_ms, side="right") - 1
        labels = np.append(self.band_labels, 0)  # k == -1 (before any edge) is standard
        return labels[k]


def build_calendar(tariff: Tariff, tz: ZoneInfo, first_day: date, last_day: date) -> Calendar:
    """Midnights and band windows covering the local days first_day..last_day (inclusive).

    Every machine of a site asks for the same calendar, and building one costs a few
    zoneinfo conversions per day: it is memoised on the tariff's content.
    """
    return _build(tariff.model_dump_json(), tz, first_day, last_day)


@lru_cache(maxsize=64)
def _build(tariff_json: str, tz: ZoneInfo, first_day: date, last_day: date) -> Calendar:
    tariff = Tariff.model_validate_json(tariff_json)
    n_days = (last_day - first_day).days + 1
    days = [first_day + timedelta(days=k) for k in range(-1, n_days + 1)]
    midnights = np.array([local_minute_to_utc_ms(d, 0, tz) for d in days[1:]], dtype=np.int64)

    # One window per band per local day it applies to; a window that crosses midnight
    # belongs to the day it starts, so the day before first_day is included.
    starts: list[int] = []
    ends: list[int] = []
    owner: list[int] = []
    for b, band in enumerate(tariff.band, start=1):
        active = {DAYS.index(d) for d in band.days}
        end_min = band.end_min if band.end_min > band.start_min else band.end_min + _DAY_MIN
        for day in days[:-1]:
            if day.weekday() in active:
                starts.append(local_minute_to_utc_ms(day, band.start_min, tz))
                ends.append(local_minute_to_utc_ms(day, end_min, tz))
                owner.append(b)
    s = np.array(starts, dtype=np.int64)
    e = np.array(ends, dtype=np.int64)
    who = np.array(owner, dtype=np.int64)
    edges = np.unique(np.concatenate([s, e]))
    labels = np.zeros(len(edges), dtype=np.int64)
    # Paint the later bands first so that earlier bands (config order) win overlaps.
    for b in range(len(tariff.band), 0, -1):
        mine = who == b
        cover = np.zeros(len(edges) + 1, dtype=np.int64)
        np.add.at(cover, np.searchsorted(edges, s[mine]), 1)
        np.add.at(cover, np.searchsorted(edges, e[mine]), -1)
        labels[np.cumsum(cover)[:-1] > 0] = b
    for shared in (midnights, edges, labels):
        shared.setflags(write=False)  # one cached instance serves every caller
    return Calendar(first_day, midnights, edges, labels)
