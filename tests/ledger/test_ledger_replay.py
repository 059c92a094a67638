"""Replay: idempotent, partial runs equal one full run, explicit jobs, counted duplicates."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.ledger.shop import (
    dump,
    ledger_path,
    local_ms,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

TABLES = ("chunks", "rows", "day_stats", "explicit_jobs", "explicit_spans", "machines")

# Three days; a mill job runs across the first midnight, a lathe job in the peak band.
MILL = series(
    "mill",
    "2026-11-02 00:00",
    "2026-11-04 23:59",
    [
        ("2026-11-02 22:00", "2026-11-03 02:00", 3000.0),
        ("2026-11-04 08:00", "2026-11-04 09:30", 2500.0),
    ],
)
LATHE = series(
    "lathe",
    "2026-11-02 00:00",
    "2026-11-04 23:59",
    [("2026-11-03 15:00", "2026-11-03 17:00", 2000.0)],
)


def _replay(config: Path, name: str, lines: list[str], *extra: str | Path) -> str:
    path = write_readings(config.parent / name, lines)
    result = shopwatt("replay", "--config", config, "--input", path, *extra)
    assert result.exit_code == 0, result.output
    return result.output


def _audit_actions(config: Path) -> list[str]:
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        return [a for (a,) in conn.execute("SELECT action FROM audit ORDER BY rowid")]


def _state(config: Path) -> dict[str, list[tuple[object, ...]]]:
    return {table: dump(config, table) for table in TABLES}


def test_replaying_the_same_file_twice_changes_nothing(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    _replay(config, "all.csv", MILL.lines() + LATHE.lines())
    before = _state(config)
    output = _replay(config, "all.csv", MILL.lines() + LATHE.lines())
    # The message says what happened: the replay itself is in the audit trail.
    assert "nothing new: no readings added, no rows changed (the replay is audited)" in output
    assert f"{len(MILL.t_ms) + len(LATHE.t_ms):,} rows already in the ledger" in output
    assert _state(config) == before
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        assert conn.execute("SELECT action FROM audit").fetchall() == [("replay",), ("replay",)]


def test_a_recompute_with_nothing_to_do_leaves_no_audit_entry(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    _replay(config, "all.csv", MILL.lines())
    audit = _audit_actions(config)
    result = shopwatt("recompute", "--config", config)
    assert result.exit_code == 0, result.output
    assert "nothing to recompute" in result.output
    # An entry would claim "costing settings changed" for a ledger that did not change.
    assert _audit_actions(config) == audit == ["replay"]


def test_replay_in_pieces_equals_one_replay(tmp_path: Path) -> None:
    whole, pieces = write_shop(tmp_path / "whole"), write_shop(tmp_path / "pieces")
    _replay(whole, "all.csv", MILL.lines() + LATHE.lines())
    # Cut inside the job that crosses midnight, then fill a hole afterwards (late data).
    _replay(pieces, "a.csv", MILL.lines(hi="2026-11-03 00:30") + LATHE.lines(hi="2026-11-03 16:00"))
    _replay(pieces, "b.csv", MILL.lines(lo="2026-11-03 06:00") + LATHE.lines(lo="2026-11-03 16:00"))
    _replay(pieces, "c.csv", MILL.lines(lo="2026-11-03 00:30", hi="2026-11-03 06:00"))
    assert _state(pieces) == _state(whole)
    jobs = {r[2] for r in dump(whole, "rows") if r[1] == "job"}
    assert jobs == {"mill-20261102-001", "lathe-20261103-001", "mill-20261104-001"}


def test_a_job_still_running_at_the_end_of_the_data_is_open_until_more_data_comes(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path)
    _replay(config, "a.csv", MILL.lines(hi="2026-11-03 01:00"))
    open_flags = [r[14] for r in dump(config, "rows") if r[1] == "job"]
    assert open_flags == [1]
    _replay(config, "b.csv", MILL.lines(lo="2026-11-03 01:00", hi="2026-11-03 12:00"))
    open_flags = [r[14] for r in dump(config, "rows") if r[1] == "job"]
    assert open_flags == [0]


def test_duplicate_rows_count_once_and_are_reported(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    lines = MILL.lines(hi="2026-11-02 06:00")
    time, machine, _, wh = lines[20].split(",")
    doubled = [*lines, *lines[:10], f"{time},{machine},999.0,{wh}"]
    output = _replay(config, "dup.csv", doubled)
    assert "dropped 11 duplicate rows" in output
    assert "1 of the dropped rows had other values" in output
    single = write_shop(tmp_path / "single")
    _replay(single, "one.csv", lines)
    assert dump(config, "rows") == dump(single, "rows")
    status = shopwatt("status", "--config", config).output
    mill = next(line for line in status.splitlines() if line.startswith("mill"))
    assert mill.split()[8:11] == ["11", "0", "1"]  # dup, again, diff


def _jobs(path: Path, rows: list[str]) -> Path:
    path.write_text("job_id,machine,start,end,customer\n" + "\n".join(rows) + "\n")
    return path


def test_explicit_jobs_take_their_spans_and_detection_keeps_the_rest_of_the_day(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path)
    jobs = _jobs(
        tmp_path / "jobs.csv",
        [
            "WO-1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00,ACME",
            "WO-2,mill,2026-11-03T10:00:00+01:00,2026-11-03T10:30:00+01:00,Beta",
        ],
    )
    _replay(config, "all.csv", MILL.lines(), "--jobs", jobs, "--create-customers")
    mill_jobs = {r[2]: r for r in dump(config, "rows") if r[1] == "job" and r[3] == "mill"}
    # The file's jobs on 2026-11-03 take their hours; the detected job that ran into that
    # day from the night before is still whole (it ends at its last running reading).
    assert set(mill_jobs) == {"mill-20261102-001", "WO-1", "WO-2", "mill-20261104-001"}
    assert mill_jobs["WO-1"][4] == "ACME"
    assert mill_jobs["mill-20261102-001"][6] == local_ms("2026-11-03 02:00")
    before = _state(config)
    _replay(config, "all.csv", MILL.lines(), "--jobs", jobs, "--create-customers")
    assert _state(config) == before


def test_a_new_jobs_file_replaces_the_stored_jobs_of_its_days(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    first = _jobs(
        tmp_path / "a.csv", ["WO-1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00,"]
    )
    second = _jobs(
        tmp_path / "b.csv", ["WO-9,mill,2026-11-03T12:00:00+01:00,2026-11-03T13:00:00+01:00,"]
    )
    _replay(config, "all.csv", MILL.lines(), "--jobs", first)
    result = shopwatt("replay", "--config", config, "--jobs", second)
    assert result.exit_code == 0, result.output
    ids = {r[2] for r in dump(config, "rows") if r[1] == "job" and r[3] == "mill"}
    assert "WO-9" in ids and "WO-1" not in ids


@pytest.mark.parametrize("counter", [True, False], ids=["counter", "power-only"])
def test_exported_energy_reconciles_with_the_meter(tmp_path: Path, counter: bool) -> None:
    config = write_shop(tmp_path)
    path = write_readings(tmp_path / "r.csv", MILL.lines(counter=counter), counter=counter)
    assert shopwatt("replay", "--config", config, "--input", path).exit_code == 0
    out = shopwatt("export", "--config", config, "--from", "2026-11-01", "--to", "2026-12-01")
    lines = out.stdout.splitlines()
    k = lines[0].split(",").index("energy_kwh")
    exported = sum(float(line.split(",")[k]) for line in lines[1:])
    metered = (MILL.wh[-1] - MILL.wh[0]) / 1000
    # Each row prints its bands to 1 Wh: at most 0.5 Wh off per band and row.
    assert exported == pytest.approx(metered, abs=0.0005 * 2 * (len(lines) - 1))


def test_recompute_all_reproduces_the_rows_of_a_long_history(tmp_path: Path) -> None:
    # 40 days: the recompute walks it in month-sized pieces; jobs run across midnights,
    # across the pieces' edges and across the end of October's summer time.
    nightly = [
        (f"2026-10-{d:02d} 23:00", f"2026-10-{d + 1:02d} 01:30", 2800.0) for d in range(20, 31)
    ]
    nightly += [
        (f"2026-11-{d:02d} 23:00", f"2026-11-{d + 1:02d} 01:30", 2800.0) for d in range(1, 29)
    ]
    long = series("mill", "2026-10-20 00:00", "2026-11-29 12:00", nightly, step_s=300)
    config = write_shop(tmp_path)
    # With 5-minute readings the engine must not join readings across max_gap_s = 120 s.
    config.write_text(config.read_text().replace("max_gap_s = 120", "max_gap_s = 600"))
    _replay(config, "long.csv", long.lines())
    before = _state(config)
    assert len([r for r in before["rows"] if r[1] == "job"]) == 39
    assert shopwatt("recompute", "--config", config, "--all").exit_code == 0
    assert _state(config) == before
