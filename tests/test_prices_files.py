"""Price files: every format read into slots of UTC instants, DST days by construction."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.errors import InputError
from gateway.inputs.prices import read_prices

FILES = Path(__file__).parent / "prices"
BERLIN = ZoneInfo("Europe/Berlin")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_a_spring_day_has_92_quarter_hour_slots_back_to_back() -> None:
    slots = read_prices(FILES / "plain_spring_15min.csv", "plain", BERLIN, 15).slots
    assert len(slots.start_ms) == 92
    assert slots.start_ms[0] == _ms("2026-03-29T00:00:00+01:00")
    assert slots.end_ms[-1] == _ms("2026-03-30T00:00:00+02:00")
    assert (slots.start_ms[1:] == slots.end_ms[:-1]).all()  # no gap, no overlap


def test_entsoe_marks_the_repeated_hour_and_leaves_a_missing_price_out() -> None:
    slots = read_prices(FILES / "entsoe_day_ahead.csv", "entsoe", BERLIN).slots
    assert slots.start_ms.tolist() == [
        _ms("2026-10-25T01:00:00+02:00"),
        _ms("2026-10-25T02:00:00+02:00"),
        _ms("2026-10-25T02:00:00+01:00"),  # the second 02:00: its own slot
        _ms("2026-10-25T04:00:00+01:00"),  # 03:00 had no price ('-'): missing
    ]
    assert (slots.end_ms - slots.start_ms).tolist() == [3_600_000] * 4
    np.testing.assert_array_equal(slots.price, [81.20, 79.95, 75.10, 70.00])


def test_awattar_json_gives_23_hours_on_the_spring_day() -> None:
    slots = read_prices(FILES / "awattar_spring.json", "awattar", BERLIN).slots
    assert len(slots.start_ms) == 23
    assert slots.start_ms[0] == _ms("2026-03-29T00:00:00+01:00")
    assert slots.price[1] == 91.5


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        (
            "start,price\n2026-10-25T00:00:00+02:00,x\n",
            "plain",
            "line 2: price = 'x': not a number",
        ),
        (
            'MTU (CET/CEST),price\n"25.10.2026 02:00 - 25.10.2026 03:00",70\n',
            "entsoe",
            "line 2: MTU = '25.10.2026 02:00 - 25.10.2026 03:00': "
            "a time the clock shows twice, without (CET) or (CEST)",
        ),
        (
            "start,price\n2026-10-25T00:00:00+02:00,1\n2026-10-25T00:30:00+02:00,1\n",
            "plain",
            "lines 2 and 3: slots overlap",
        ),
        (  # quarter-hour prices without --minutes 15: said so
            "start,price\n2026-10-25T00:00:00+02:00,1\n2026-10-25T00:15:00+02:00,1\n",
            "plain",
            "lines 2 and 3: slots overlap: their starts are 15 minutes apart, each slot lasts "
            "--minutes 60; for quarter-hour prices import with --minutes 15",
        ),
    ],
)
def test_a_bad_line_names_file_line_and_value(
    tmp_path: Path, text: str, fmt: str, message: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_prices(path, fmt, BERLIN, 60)
    assert str(err.value) == f"{path} {message}"
