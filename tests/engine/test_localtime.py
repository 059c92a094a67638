"""Local wall-clock times -> UTC: one deterministic rule on DST days."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.config import Tariff
from gateway.engine.localtime import (
    build_calendar,
    iso_utc,
    last_day,
    local_minute_to_utc_ms,
    period_dates,
    period_ms,
    wall_to_utc_ms,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("wall", "utc"),
    [
        (datetime(2026, 11, 3, 16, 0), "2026-11-03T15:00:00.000Z"),  # plain winter time
        (datetime(2026, 7, 1, 16, 0), "2026-07-01T14:00:00.000Z"),  # plain summer time
        # spring forward: 02:00-02:59 never shows on the clock -> the jump at 01:00Z
        (datetime(2026, 3, 29, 2, 0), "2026-03-29T01:00:00.000Z"),
        (datetime(2026, 3, 29, 2, 30), "2026-03-29T01:00:00.000Z"),
        (datetime(2026, 3, 29, 3, 0), "2026-03-29T01:00:00.000Z"),
        # fall back: 02:00-02:59 shows twice -> the first time (summer time)
        (datetime(2026, 10, 25, 2, 30), "2026-10-25T00:30:00.000Z"),
        (datetime(2026, 10, 25, 3, 0), "2026-10-25T02:00:00.000Z"),
    ],
)
def test_wall_time_maps_to_its_first_instant(wall: datetime, utc: str) -> None:
    assert iso_utc(wall_to_utc_ms(wall, BERLIN)) == utc


def test_minutes_count_on_the_wall_clock_across_midnight() -> None:
    # 30:00 = 06:00 the next day, the end of a 22:00-06:00 band
    assert local_minute_to_utc_ms(date(2026, 11, 6), 30 * 60, BERLIN) == local_minute_to_utc_ms(
        date(2026, 11, 7), 6 * 60, BERLIN
    )


def test_a_day_whose_midnight_does_not_exist_starts_when_the_clock_jumps() -> None:
    # Chile moves from 24:00 on Saturday straight to 01:00 on Sunday 2026-09-06.
    santiago = ZoneInfo("America/Santiago")
    cal = build_calendar(Tariff(id="t", rate=0.1), santiago, date(2026, 9, 5), date(2026, 9, 6))
    assert [iso_utc(int(m)) for m in cal.midnights] == [
        "2026-09-05T04:00:00.000Z",
        "2026-09-06T04:00:00.000Z",  # the instant the clock jumps to 01:00 -03
        "2026-09-07T03:00:00.000Z",
    ]


def test_day_lengths_on_dst_days_are_23_and_25_hours() -> None:
    tariff = Tariff(id="t", rate=0.1)
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 11, 3), 24)):
        cal = build_calendar(tariff, BERLIN, day, day)
        assert (cal.midnights[1] - cal.midnights[0]) / 3_600_000 == hours


@pytest.mark.parametrize(
    ("period", "first", "end", "last"),
    [
        ("2026-02", date(2026, 2, 1), date(2026, 3, 1), date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 3, 1), date(2028, 2, 29)),  # leap year
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1), date(2026, 12, 31)),  # year turns
        # No date follows 9999-12-31 (Python's dates stop there): the month ends at date.max.
        ("9999-12", date(9999, 12, 1), date.max, date(9999, 12, 31)),
    ],
)
def test_a_month_is_its_local_dates_first_to_end(
    period: str, first: date, end: date, last: date
) -> None:
    assert period_dates(period) == (first, end)
    assert last_day(period) == last


def test_a_month_with_a_dst_change_spans_its_local_midnights() -> None:
    lo, hi = period_ms("2026-10", BERLIN)  # starts in summer time, ends in winter time
    assert (iso_utc(lo), iso_utc(hi)) == ("2026-09-30T22:00:00.000Z", "2026-10-31T23:00:00.000Z")


def test_earlier_band_wins_and_crossing_band_belongs_to_its_start_day() -> None:
    tariff = Tariff.model_validate(
        {
            "id": "t",
            "rate": 0.2,
            "band": [
                {"name": "night", "rate": 0.1, "days": ["fri"], "start": "22:00", "end": "06:00"},
                {"name": "late", "rate": 0.5, "start": "20:00", "end": "24:00"},
            ],
        }
    )
    cal = build_calendar(tariff, BERLIN, date(2026, 11, 6), date(2026, 11, 7))

    def band_at(local: str) -> str:
        t = int(datetime.fromisoformat(local).timestamp() * 1000)
        column = cal.column_index(np.array([t]))[0]  # as the engine prices an instant
        return tariff.band_names[int(cal.column_band[column])]

    assert band_at("2026-11-06T21:00:00+01:00") == "late"
    assert band_at("2026-11-06T23:00:00+01:00") == "night"  # night listed first: it wins
    assert band_at("2026-11-07T05:59:00+01:00") == "night"  # Friday's band, on Saturday
    assert band_at("2026-11-07T06:00:00+01:00") == "standard"
    assert band_at("2026-11-07T23:00:00+01:00") == "late"  # Saturday has no night band


def test_each_instant_is_priced_by_the_version_in_force() -> None:
    # A Friday night band of the first version runs into Saturday; the second version takes
    # over at Saturday 02:00 with other bands: the night band ends there, priced columns
    # (version, band) say which rate applies.
    tariff = Tariff.model_validate(
        {
            "id": "v1",
            "rate": 0.2,
            "band": [{"name": "night", "rate": 0.1, "start": "22:00", "end": "06:00"}],
            "version": [
                {
                    "id": "v2",
                    "valid_from": datetime(2026, 11, 7, 2, 0),
                    "rate": 0.3,
                    "band": [{"name": "peak", "rate": 0.5, "start": "08:00", "end": "12:00"}],
                }
            ],
        }
    )
    assert tariff.band_names == ["standard", "night", "peak"]
    assert tariff.columns == [(0, "standard"), (0, "night"), (1, "standard"), (1, "peak")]
    cal = build_calendar(tariff, BERLIN, date(2026, 11, 6), date(2026, 11, 7))

    def column_at(local: str) -> tuple[int, str]:
        t = int(datetime.fromisoformat(local).timestamp() * 1000)
        return tariff.columns[int(cal.column_index(np.array([t]))[0])]

    assert column_at("2026-11-06T21:00:00+01:00") == (0, "standard")
    assert column_at("2026-11-07T01:59:59+01:00") == (0, "night")
    assert column_at("2026-11-07T02:00:00+01:00") == (1, "standard")
    assert column_at("2026-11-07T09:00:00+01:00") == (1, "peak")
    assert column_at("2026-11-07T23:00:00+01:00") == (1, "standard")  # v2 has no night band


def test_a_version_from_a_skipped_wall_time_takes_over_when_the_clock_jumps() -> None:
    tariff = Tariff.model_validate(
        {
            "id": "v1",
            "rate": 0.2,
            "version": [{"id": "v2", "valid_from": "2026-03-29T02:30:00", "rate": 0.3}],
        }
    )
    cal = build_calendar(tariff, BERLIN, date(2026, 3, 29), date(2026, 3, 29))
    assert [iso_utc(int(e)) for e in cal.band_edges] == ["2026-03-29T01:00:00.000Z"]  # 03:00 CEST


def test_a_calendar_after_a_version_change_holds_only_the_version_in_force() -> None:
    tariff = Tariff.model_validate(
        {
            "id": "v1",
            "rate": 0.2,
            "band": [{"name": "peak", "rate": 0.4, "start": "16:00", "end": "20:00"}],
            "version": [
                {
                    "id": "v2",
                    "valid_from": "2026-11-01",
                    "rate": 0.3,
                    "band": [{"name": "peak", "rate": 0.5, "start": "17:00", "end": "21:00"}],
                }
            ],
        }
    )
    cal = build_calendar(tariff, BERLIN, date(2026, 12, 10), date(2026, 12, 10))
    t = int(datetime.fromisoformat("2026-12-10T16:30:00+01:00").timestamp() * 1000)
    u = int(datetime.fromisoformat("2026-12-10T20:30:00+01:00").timestamp() * 1000)
    assert [tariff.columns[int(c)] for c in cal.column_index(np.array([t, u]))] == [
        (1, "standard"),
        (1, "peak"),
    ]
