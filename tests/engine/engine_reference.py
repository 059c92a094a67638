"""A slow, obvious re-implementation of the split, job detection and run time: the oracle.

It walks minute by minute (test data lives on a whole-minute grid, so every label is
constant inside a minute) and looks each minute's band up on the wall clock directly.
It shares nothing with the engine except the interval energies it is given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.config import DAYS, Machine, Tariff

MIN_MS = 60_000


def detect(
    t: list[int], watts: list[float], m: Machine, taken: Sequence[tuple[int, int]] = ()
) -> list[tuple[int, int]]:
    """Jobs by the rules, one reading at a time; readings inside a taken (explicit) job do
    not run, and no job joins readings with the start of a taken job between them."""
    groups: list[list[int]] = []
    prev = -1
    for i, w in enumerate(watts):
        if w <= m.run_above_w or any(a <= t[i] < b for a, b in taken):
            continue
        crossed = any(t[prev] < a <= t[i] for a, _ in taken)
        adjacent = prev == i - 1 and t[i] - t[prev] <= m.max_gap_s * 1000
        if groups and not crossed and (adjacent or t[i] - t[prev] < m.merge_gap_s * 1000):
            groups[-1][1] = t[i]
        else:
            groups.append([t[i], t[i]])
        prev = i
    return [(a, b) for a, b in groups if b > a and b - a >= m.min_job_s * 1000]


def band_at(moment_ms: int, tariff: Tariff, tz: ZoneInfo) -> int:
    """Index into band_names of the band whose wall-clock window holds this instant."""
    wall = datetime.fromtimestamp(moment_ms / 1000, tz).replace(tzinfo=None)
    for k, band in enumerate(tariff.band, start=1):
        end = band.end_min if band.end_min > band.start_min else band.end_min + 1440
        for day in (wall.date(), wall.date() - timedelta(days=1)):
            if DAYS[day.weekday()] not in band.days:
                continue
            midnight = datetime(day.year, day.month, day.day)
            if (
                midnight + timedelta(minutes=band.start_min)
                <= wall
                < midnight + timedelta(minutes=end)
            ):
                return k
    return 0


def split(
    t: list[int],
    watts: list[float],
    interval_wh: list[float],
    jobs: list[tuple[int, int]],
    m: Machine,
    tariff: Tariff,
    tz: ZoneInfo,
) -> tuple[dict[int, list[float]], dict[date, list[float]], dict[int, float]]:
    """Energy per band for each job and each overhead day, and run seconds per job."""
    n_bands = len(tariff.band_names)
    job_wh: dict[int, list[float]] = defaultdict(lambda: [0.0] * n_bands)
    day_wh: dict[date, list[float]] = defaultdict(lambda: [0.0] * n_bands)
    run_s: dict[int, float] = defaultdict(float)
    for i in range(len(t) - 1):
        minutes = (t[i + 1] - t[i]) // MIN_MS
        runs = watts[i] > m.run_above_w and t[i + 1] - t[i] <= m.max_gap_s * 1000
        for k in range(minutes):
            start = t[i] + k * MIN_MS
            band = band_at(start, tariff, tz)
            job = next((j for j, (a, b) in enumerate(jobs) if a <= start < b), None)
            if job is None:
                day = datetime.fromtimestamp(start / 1000, tz).date()
                day_wh[day][band] += interval_wh[i] / minutes
            else:
                job_wh[job][band] += interval_wh[i] / minutes
                run_s[job] += 60.0 if runs else 0.0
    return job_wh, day_wh, run_s
