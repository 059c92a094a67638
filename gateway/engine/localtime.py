"""Local time, the one home of its arithmetic: UTC ms <-> local wall clock (DST-correct,
deterministic), local days and months (accounting periods), and the calendar of a span of
local days with the tariff's band timeline."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from gateway.config import DAYS, Tariff, TariffRates
from gateway.engine.model import I64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The instants a UTC date can name: years 1 to 9999 (Python's dates), in UTC ms.
FIRST_MS, LAST_MS = ((m.replace(tzinfo=UTC) - _EPOCH) // _MS for m in (datetime.min, datetime.max))
# 2020-01-01 UTC: no reading or job event is earlier (the protocol's lower bound); a sensor
# whose clock never synced says 1970 (docs/protocol.md, Time).
PLAUSIBLE_FIRST_MS = 1_577_836_800_000
_DAY_MIN = 24 * 60


def utc_ms(moment: datetime) -> int:
    """An aware datetime -> integer milliseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // _MS


def local_time(t_ms: int, tz: ZoneInfo) -> datetime:
    """The local wall-clock time (aware) of a UTC instant, exact to the millisecond."""
    return (_EPOCH + timedelta(milliseconds=t_ms)).astimezone(tz)


def local_date(t_ms: int, tz: ZoneInfo) -> date:
    """The local calendar date of a UTC instant."""
    return local_time(t_ms, tz).date()


def _wall(seconds: int, tz: ZoneInfo) -> datetime:
    """The naive wall-clock reading at a UTC instant given in whole seconds."""
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(tz).replace(tzinfo=None)


def wall_to_utc_ms(wall: datetime, tz: ZoneInfo) -> int:
    """First UTC instant whose local wall clock reads `wall` or later.

    This is the one rule for DST: a wall time that occurs twice (fall back) means its
    first occurrence; a wall time that never occurs (spring forward) means the instant
    the clock jumps over it. So a window [start, end) holds exactly the instants whose
    wall clock reads inside it (except the repeated hour, which is counted once).
    """
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return utc_ms(first)
    # In the gap, fold=1 reads the wall time with the later (larger) offset, fold=0 with
    # the earlier one: the transition lies between them. tzdata transitions fall on whole
    # seconds, so a bisection over seconds finds it exactly.
    lo = utc_ms(wall.replace(tzinfo=tz, fold=1)) // 1000
    hi = utc_ms(first) // 1000
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, tz) >= wall:
            hi = mid
        else:
            lo = mid
    return hi * 1000


def local_minute_to_utc_ms(day: date, minute: int, tz: ZoneInfo) -> int:
    """`minute` minutes of wall-clock time after the local midnight of `day` -> UTC ms.

    Minutes count on the wall clock (24:00 is the next midnight, 30:00 is 06:00 the next
    day), so a band's 16:00 is 16:00 on a 23- or 25-hour day too.
    """
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return wall_to_utc_ms(wall, tz)


def iso_utc(t_ms: int) -> str:
    """UTC instant as ISO 8601 with 'Z', for messages."""
    moment = _EPOCH + timedelta(milliseconds=t_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def midnight_ms(day: date, tz: ZoneInfo) -> int:
    """The local midnight that starts `day`, in UTC ms (the engine's own DST rule)."""
    return local_minute_to_utc_ms(day, 0, tz)


def day_start_ms(t_ms: int, tz: ZoneInfo) -> int:
    """The local midnight at or before an instant."""
    return midnight_ms(local_date(t_ms, tz), tz)


def next_midnight_ms(t_ms: int, tz: ZoneInfo) -> int:
    """The first local midnight strictly after an instant."""
    return midnight_ms(local_date(t_ms, tz) + timedelta(days=1), tz)


def period_of(day: date) -> str:
    """The accounting period (local calendar month, 'YYYY-MM') that holds a local date."""
    return f"{day.year:04d}-{day.month:02d}"


def period_start(period: str) -> date:
    """The first local date of a period."""
    return date(int(period[:4]), int(period[5:7]), 1)


def next_period(period: str) -> str:
    """The period after this one."""
    day = period_start(period)
    return f"{day.year + day.month // 12:04d}-{day.month % 12 + 1:02d}"


def last_day(period: str) -> date:
    """The last local date of a period."""
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, calendar.monthrange(year, month)[1])


def period_dates(period: str) -> tuple[date, date]:
    """A period as the local dates [first, end) the ledger selects by."""
    # 9999-12 has no date after it (Python's dates stop at year 9999): it ends at date.max,
    # its last day, which no reading can reach (none is dated a day past the clock).
    end = date.max if period == "9999-12" else period_start(next_period(period))
    return period_start(period), end


def period_ms(period: str, tz: ZoneInfo) -> tuple[int, int]:
    """A period as the local midnights [first, end) that bound it, in UTC ms."""
    first, end = period_dates(period)
    return midnight_ms(first, tz), midnight_ms(end, tz)


def periods_between(start: date, end: date) -> list[str]:
    """Periods overlapping the local dates [start, end)."""
    if end <= start:
        return []
    periods = [period_of(start)]
    last = period_of(end - timedelta(days=1))
    while periods[-1] != last:
        periods.append(next_period(periods[-1]))
    return periods


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local days first_day..last_day of one time zone, and which tariff version and band
    prices each instant (a priced column: an index into Tariff.columns)."""

    first_day: date
    midnights: I64  # local midnight starting each day, plus the one ending the last day
    band_edges: I64  # sorted instants where the version or band may change
    column_labels: I64  # column in force from band_edges[k] to band_edges[k + 1]
    column_band: I64  # index into Tariff.band_names of each column
    column_version: I64  # index into Tariff.versions of each column

    @property
    def days(self) -> list[date]:
        """The local dates, in order."""
        return [self.first_day + timedelta(days=k) for k in range(len(self.midnights) - 1)]

    def day_index(self, t_ms: I64) -> I64:
        """Index of the local day holding each instant."""
        return np.searchsorted(self.midnights, t_ms, side="right") - 1

    def column_index(self, t_ms: I64) -> I64:
        """Priced column (index into Tariff.columns: version and band) at each instant."""
        k = np.searchsorted(self.band_edges, t_ms, side="right") - 1
        # k == -1 (before any edge) is the first version's standard rate.
        labels = np.append(self.column_labels, 0)
        return labels[k]


def build_calendar(tariff: Tariff, tz: ZoneInfo, first_day: date, last_day: date) -> Calendar:
    """Midnights, and band windows of the versions in force, covering first_day..last_day.

    Every machine of a site asks for the same calendar, and building one costs a few
    zoneinfo conversions per day: it is memoised on the tariff's content.
    """
    return _build(tariff.model_dump_json(), tz, first_day, last_day)


def version_starts_ms(tariff: Tariff, tz: ZoneInfo) -> I64:
    """UTC instants where each [[tariff.version]] takes over (the first version has none)."""
    return np.array([wall_to_utc_ms(v.valid_from_wall, tz) for v in tariff.version], np.int64)


def version_index(tariff: Tariff, tz: ZoneInfo, t_ms: I64) -> I64:
    """Index into Tariff.versions of the version in force at each instant."""
    return np.searchsorted(version_starts_ms(tariff, tz), t_ms, side="right")


def _band_timeline(version: TariffRates, tz: ZoneInfo, days: list[date]) -> tuple[I64, I64]:
    """Edges and the band (index into version.own_bands) from each edge to the next."""
    # One window per band per local day it applies to; a window that crosses midnight
    # belongs to the day it starts, so the day before the first day is included.
    starts: list[int] = []
    ends: list[int] = []
    owner: list[int] = []
    for b, band in enumerate(version.band, start=1):
        active = {DAYS.index(d) for d in band.days}
        end_min = band.end_min if band.end_min > band.start_min else band.end_min + _DAY_MIN
        for day in days:
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
    for b in range(len(version.band), 0, -1):
        mine = who == b
        cover = np.zeros(len(edges) + 1, dtype=np.int64)
        np.add.at(cover, np.searchsorted(edges, s[mine]), 1)
        np.add.at(cover, np.searchsorted(edges, e[mine]), -1)
        labels[np.cumsum(cover)[:-1] > 0] = b
    return edges, labels


@lru_cache(maxsize=64)
def _build(tariff_json: str, tz: ZoneInfo, first_day: date, last_day: date) -> Calendar:
    tariff = Tariff.model_validate_json(tariff_json)
    n_days = (last_day - first_day).days + 1
    days = [first_day + timedelta(days=k) for k in range(-1, n_days + 1)]
    midnights = np.array([local_minute_to_utc_ms(d, 0, tz) for d in days[1:]], dtype=np.int64)

    # Versions are more edges: each version's own band timeline, kept only from its
    # valid_from to the next version's, with an edge at valid_from carrying the band
    # that version has in force at that instant.
    bounds = [np.iinfo(np.int64).min, *version_starts_ms(tariff, tz), np.iinfo(np.int64).max]
    offsets = np.cumsum([0, *(len(v.own_bands) for v in tariff.versions)])
    edge_parts: list[I64] = []
    label_parts: list[I64] = []
    for k, version in enumerate(tariff.versions):
        lo, hi = bounds[k], bounds[k + 1]
        if hi <= midnights[0] or lo >= midnights[-1]:
            continue  # not in force on these days: no windows to build
        edges, labels = _band_timeline(version, tz, days[:-1])
        if k:
            at = np.searchsorted(edges, lo, side="right") - 1
            edge_parts.append(np.array([lo], dtype=np.int64))
            label_parts.append(np.array([labels[at] if at >= 0 else 0]) + offsets[k])
        inside = (edges > lo) & (edges < hi)
        edge_parts.append(edges[inside])
        label_parts.append(labels[inside] + offsets[k])
    edges = np.concatenate(edge_parts)
    labels = np.concatenate(label_parts)
    column_band = np.array(tariff.column_band, dtype=np.int64)
    column_version = np.array([k for k, _ in tariff.columns], dtype=np.int64)
    for shared in (midnights, edges, labels, column_band, column_version):
        shared.setflags(write=False)  # one cached instance serves every caller
    return Calendar(first_day, midnights, edges, labels, column_band, column_version)
