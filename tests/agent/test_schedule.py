"""Job schedules: a CSV replaces generated jobs; jobs.csv is what the gateway reads back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.shopday import ShopDay, simulate_shop_day
from gateway.config import load_config
from gateway.errors import InputError
from gateway.inputs.csvfile import read_jobs

HEADER = "job_id,machine,start,end\n"


def test_the_gateway_reads_jobs_csv_back_as_the_truth(shop_day: ShopDay, tmp_path: Path) -> None:
    (tmp_path / "shop.toml").write_text(shop_day.config_toml)
    path = tmp_path / "jobs.csv"
    shop_day.jobs_csv(path)
    back = read_jobs(path, load_config(tmp_path / "shop.toml").machines).jobs
    assert back == {m: t.jobs for m, t in shop_day.truth.items() if t.explicit}


def test_a_schedule_file_replaces_the_generated_jobs(tmp_path: Path) -> None:
    path = tmp_path / "schedule.csv"
    path.write_text(
        "job_id,machine,start,end,customer\n"
        + "A-1,cnc-02,2026-11-17T08:00:00+01:00,2026-11-17T09:30:00+01:00,Spree Robotics\n"
        + "A-2,cnc-02,2026-11-17T17:45:00+01:00,2026-11-17T18:15:00+01:00,\n"
    )
    day = simulate_shop_day(schedule=path)
    jobs = day.truth["cnc-02"].jobs
    assert [(j.job_id, j.customer) for j in jobs] == [("A-1", "Spree Robotics"), ("A-2", "")]
    start = dt.datetime(2026, 11, 17, 8, tzinfo=day.tz).timestamp() * 1000
    assert jobs[0].start_ms == start and jobs[0].end_ms == start + 90 * 60 * 1000
    # The machine stays powered past its shift for the late job, and runs exactly then.
    p = day.power["cnc-02"]
    late = (p.t_ms >= jobs[1].start_ms) & (p.t_ms <= jobs[1].end_ms)
    assert p.watts[late].max() > 2500 and p.watts[late][[0, -1]].min() > 2500
    assert day.truth["cnc-01"] == simulate_shop_day().truth["cnc-01"]  # others unchanged


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "A,cnc-01,2026-11-17T08:00:00+01:00,2026-11-17T09:00:00+01:00\n"
            "B,cnc-01,2026-11-17T08:30:00+01:00,2026-11-17T10:00:00+01:00\n",
            "line 3: job 'B' overlaps job 'A'",
        ),
        (
            "A,cnc-01,2026-11-16T23:00:00+01:00,2026-11-17T01:00:00+01:00\n",
            "job 'A' on cnc-01: must start after the day's first second",
        ),
        ("A,cnc-09,2026-11-17T08:00:00Z,2026-11-17T09:00:00Z\n", "line 2: machine"),
    ],
)
def test_schedules_that_cannot_happen_in_the_day_are_refused(
    tmp_path: Path, rows: str, expected: str
) -> None:
    path = tmp_path / "schedule.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(InputError, match=expected):
        simulate_shop_day(schedule=path)
