"""Bad input: one clear error naming file, line, column and value; the ledger is untouched."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gateway.config import load_config
from gateway.engine import ExplicitJob
from gateway.errors import InputError
from gateway.inputs.csvfile import JobsFile, ReadingsCsv, read_jobs
from gateway.ledger import Ledger
from tests.ledger.shop import (
    csv_rows,
    ledger_path,
    local_ms,
    replay_readings,
    series,
    sha256,
    shopwatt,
    write_readings,
    write_shop,
)

GOOD = [
    "2026-11-03T08:00:00+01:00,mill,200,100.0",
    "2026-11-03T08:01:00+01:00,mill,1500,103.3",
    "2026-11-03T07:02:00Z,lathe,900,",
]


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "readings.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "2026-11-03T08:02:00,mill,200,104.0",
            "line 5: time = '2026-11-03T08:02:00': no UTC offset",
        ),
        (
            "2026-11-31T08:02:00Z,mill,200,104.0",
            "line 5: time = '2026-11-31T08:02:00Z': not an ISO",
        ),
        ("2026-11-03T08:02:00Z,drill,200,104.0", "line 5: machine = 'drill': not a machine"),
        ("2026-11-03T08:02:00Z,mill,-5,104.0", "line 5: watts = '-5': negative power"),
        ("2026-11-03T08:02:00Z,mill,7000,104.0", "line 5: watts = '7000': above rated_w = 5000 W"),
        ("2026-11-03T08:02:00Z,mill,abc,104.0", "line 5: watts = 'abc': not a number"),
        ("2026-11-03T08:02:00Z,mill,,104.0", "line 5: watts = '': missing or not a number"),
        ("2026-11-03T08:02:00Z,mill,200,-1", "line 5: wh = '-1': negative energy counter"),
        (
            "2026-11-03T08:02:00Z,mill,200",
            "line 5: expected 4 fields (time,machine,watts,wh), got 3",
        ),
    ],
)
def test_a_bad_row_names_file_line_column_and_value(
    tmp_path: Path, body: str, message: str
) -> None:
    cfg = load_config(write_shop(tmp_path))
    path = _file(tmp_path, "\n".join(["time,machine,watts,wh", *GOOD, body, GOOD[0]]) + "\n")
    with pytest.raises(InputError) as err:
        csv_rows(path, cfg.machines)
    assert str(err.value).startswith(f"{path} {message}")


def test_the_first_bad_row_wins_and_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    cfg = load_config(write_shop(tmp_path))
    rows = ["time,machine,watts", "", "2026-11-03T08:00:00Z,mill,200", ""]
    rows += ["2026-11-03T08:01:00Z,mill,-1"]  # line 5: a rule pyarrow cannot see
    rows += ["2026-11-03T08:02:00,mill,5"]  # line 6: a parse error that fails pyarrow
    path = _file(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"line 5: watts = '-1': negative power"):
        csv_rows(path, cfg.machines)


def test_header_mistakes_are_named(tmp_path: Path) -> None:
    cfg = load_config(write_shop(tmp_path))
    for header, message in [
        ("time,machine,power", "line 1: unknown column 'power'"),
        ("time,machine", "line 1: missing column 'watts'"),
        ("", "line 1: no header"),
    ]:
        with pytest.raises(InputError, match=message):
            csv_rows(_file(tmp_path, header + "\n"), cfg.machines)


def test_rows_in_any_order_come_out_sorted_per_machine_with_duplicates_counted(
    tmp_path: Path,
) -> None:
    cfg = load_config(write_shop(tmp_path))
    rows = [
        "time,machine,watts",
        "2026-11-03T08:02:00+01:00,mill,3",
        "2026-11-03T07:00:00Z,mill,1",  # 08:00 local: the earliest
        "2026-11-03T08:01:00.250+01:00,mill,2",
        "2026-11-03T08:00:00+01:00,mill,9",  # same instant as row 2: dropped, conflicting
        "2026-11-03T08:02:00+01:00,mill,3",  # an exact repeat: dropped
    ]
    replayed, stored = replay_readings(cfg, _file(tmp_path, "\n".join(rows) + "\n"))
    mill = stored["mill"]
    assert mill.watts.tolist() == [1.0, 2.0, 3.0]
    assert np.diff(mill.t_ms).tolist() == [60_250, 59_750]
    assert np.isnan(mill.wh).all()
    assert (replayed.rows, replayed.duplicates, replayed.conflicts) == (5, 2, 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "J2,mill,2026-11-03T08:30:00+01:00,2026-11-03T10:00:00+01:00,",
            "line 3: job 'J2' overlaps job 'J1' (line 2) on machine mill",
        ),
        ("J2,mill,2026-11-03T10:00:00+01:00,2026-11-03T09:00:00+01:00,", "end = '2026-11-03T09"),
        ("J2,drill,2026-11-03T10:00:00+01:00,2026-11-03T11:00:00+01:00,", "machine = 'drill'"),
        ("J2,mill,2026-11-03T10:00:00,2026-11-03T11:00:00+01:00,", "start = '2026-11-03T10:00:00'"),
        (
            "J1,mill,2026-11-03T10:00:00+01:00,2026-11-03T11:00:00+01:00,",
            "repeated (first on line 2)",
        ),
    ],
)
def test_a_bad_job_names_its_line(tmp_path: Path, row: str, message: str) -> None:
    cfg = load_config(write_shop(tmp_path))
    path = tmp_path / "jobs.csv"
    head = "job_id,machine,start,end,customer\n"
    head += "J1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00,"
    path.write_text(f"{head}\n{row}\n")
    with pytest.raises(InputError) as err:
        read_jobs(path, cfg.machines)
    assert str(err.value).startswith(f"{path} line 3: ")
    assert message in str(err.value)


MILL = series(
    "mill",
    "2026-11-02 00:00",
    "2026-11-03 12:00",
    [("2026-11-02 08:00", "2026-11-02 10:00", 3000.0)],
)


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("naive time", "line 3: time = '2026-11-03T13:00:00': no UTC offset"),
        ("unknown machine", "line 3: machine = 'drill': not a machine or site meter in shop.toml"),
        ("negative watts", "line 3: watts = '-3.0': negative power"),
        ("malformed csv", "line 3: expected 4 fields"),
        ("malformed toml", "shop.toml: not valid TOML"),
        ("jobs clash", "job_id 'WO-1' on mill is already stored for another time"),
    ],
)
def test_a_failed_replay_leaves_the_ledger_byte_for_byte_untouched(
    tmp_path: Path, what: str, expected: str
) -> None:
    config = write_shop(tmp_path)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "job_id,machine,start,end\nWO-1,mill,2026-11-02T08:00:00+01:00,2026-11-02T09:00:00+01:00\n"
    )
    first = write_readings(tmp_path / "first.csv", MILL.lines(hi="2026-11-03 00:00"))
    assert shopwatt("replay", "--config", config, "--input", first, "--jobs", jobs).exit_code == 0
    before = sha256(ledger_path(config))

    late = MILL.lines(lo="2026-11-03 00:00")  # new readings: a failing run would store them
    bad = {
        "naive time": "2026-11-03T13:00:00,mill,200.0,5000.0",
        "unknown machine": "2026-11-03T13:00:00+01:00,drill,200.0,5000.0",
        "negative watts": "2026-11-03T13:00:00+01:00,mill,-3.0,5000.0",
        "malformed csv": "2026-11-03T13:00:00+01:00,mill,200.0",
    }.get(what)
    path = write_readings(tmp_path / "late.csv", [late[0], *([bad] if bad else []), *late[1:]])
    args: list[str | Path] = ["replay", "--config", config, "--input", path]
    if what == "malformed toml":
        config.write_text(config.read_text() + "\n[site\n")
    if what == "jobs clash":  # fails inside the transaction, after the readings were merged
        clash = tmp_path / "clash.csv"
        clash.write_text(
            "job_id,machine,start,end\nWO-1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00\n"
        )
        args += ["--jobs", clash]

    result = shopwatt(*args)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert sha256(ledger_path(config)) == before
    assert not ledger_path(config).with_name("ledger.sqlite-wal").exists()


def test_a_first_run_that_fails_inside_the_ledger_leaves_no_ledger_file(tmp_path: Path) -> None:
    cfg = load_config(write_shop(tmp_path))
    # Overlapping jobs that skipped read_jobs' checks: the engine refuses them mid-transaction.
    start = local_ms("2026-11-02 08:00")
    jobs = JobsFile(
        tmp_path / "jobs.csv",
        "0" * 64,
        {
            "mill": (
                ExplicitJob("A", start, start + 3_600_000),
                ExplicitJob("B", start, start + 60_000),
            )
        },
    )
    readings = ReadingsCsv(write_readings(tmp_path / "r.csv", MILL.lines()), cfg.machines)
    with pytest.raises(InputError, match="overlap"):
        Ledger(cfg).replay(readings, jobs)
    assert list(ledger_path(tmp_path / "shop.toml").parent.iterdir()) == []


def _iso_after_now(ms: int) -> str:
    return datetime.fromtimestamp((time.time_ns() // 1_000_000 + ms) / 1000, UTC).isoformat()


@pytest.mark.parametrize(
    ("bad", "column"),
    [
        ("1970-01-01T00:00:07Z,mill,200,104.0", "time = '1970-01-01T00:00:07Z'"),  # never synced
        ("0001-01-01T00:00:00Z,mill,200,104.0", "time = '0001-01-01T00:00:00Z'"),
        (f"{_iso_after_now(2 * 86_400_000)},mill,200,104.0", "time = '20"),  # two days ahead
    ],
)
def test_a_reading_outside_the_plausible_window_is_refused_with_line_and_value(
    tmp_path: Path, bad: str, column: str
) -> None:
    config = write_shop(tmp_path)
    path = write_readings(tmp_path / "r.csv", [*GOOD, bad])
    result = shopwatt("replay", "--config", config, "--input", path)
    assert result.exit_code == 2
    assert f"{path} line 5: {column}" in result.stderr
    assert "outside the plausible window 2020-01-01T00:00:00.000Z .. " in result.stderr
    assert not ledger_path(config).exists()


def test_a_reading_dated_within_a_day_ahead_is_taken(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    soon = f"{_iso_after_now(12 * 3_600_000)},mill,200,104.0"  # a clock in another zone
    path = write_readings(tmp_path / "r.csv", [*GOOD, soon])
    result = shopwatt("replay", "--config", config, "--input", path)
    assert result.exit_code == 0, result.output


def test_a_job_outside_the_plausible_window_is_refused_with_line_and_value(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "job_id,machine,start,end\n"
        "J1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00\n"
        "J2,mill,1970-01-01T00:00:00Z,2026-11-03T07:00:00+01:00\n"
    )
    result = shopwatt("replay", "--config", config, "--jobs", jobs)
    assert result.exit_code == 2
    assert f"{jobs} line 3: start = '1970-01-01T00:00:00Z': outside the plausible" in (
        result.stderr
    )
