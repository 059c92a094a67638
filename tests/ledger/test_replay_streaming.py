"""Replay streams: pyarrow and the csv module read alike, blocks change nothing, RSS stays flat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.replay import replay_peak_rss_mb
from gateway.config import load_config
from gateway.engine.model import ReadingRows
from gateway.errors import InputError
from gateway.inputs import csvfile
from tests.ledger.shop import (
    csv_rows,
    dump,
    ledger_path,
    replay_readings,
    series,
    sha256,
    shopwatt,
    write_shop,
)

pytest.importorskip("pyarrow")  # the test extra installs the fast-replay extra

HEADER = b"time,machine,watts,wh\n"
ROWS = [
    b"2026-11-03T08:00:00+01:00,mill,200,100.0",
    b"2026-11-03T07:02:00Z,lathe,900,",
    b"2026-11-03T08:01:00+01:00,mill,1500,103.3",
    b"2026-11-03T07:00:00Z,mill,250,100.0",  # the same instant as row 1: dropped, conflicting
    b"2026-11-03T07:00:00.000Z,mill,200,100.0",  # again: dropped, same values
]
# Files both parsers must read alike; some only the csv module can (pyarrow hands those over).
GOOD = {
    "plain": HEADER + b"\n".join(ROWS) + b"\n",
    "bom_crlf": b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") + b"\r\n".join(ROWS) + b"\r\n",
    "classic_mac": (HEADER + b"\n".join(ROWS)).replace(b"\n", b"\r") + b"\r",
    "no_last_line_end": HEADER + b"\n".join(ROWS),
    "blank_lines": HEADER + b"\n\n".join(ROWS) + b"\n\n",
    "header_only": HEADER.rstrip(),
    "no_wh_column": b"time,machine,watts\n2026-11-03T08:00:00Z,mill,5\n",
    "columns_reordered": b"machine,wh,watts,time\nmill,1.5,200,2026-11-03T08:00:00Z\n",
    "basic_format_time": HEADER + b"20261103T080000Z,mill,200,1\n",  # pyarrow: no
    "comma_fraction": HEADER + b'"2026-11-03T08:00:00,5Z",mill,200,1\n',
    "seven_digit_fraction": HEADER + b"2026-11-03T08:00:00.1234567Z,mill,200,1\n",
    "underscore_number": HEADER + b"2026-11-03T08:00:00Z,mill,1_000,1\n",  # pyarrow: no
    "quoted_and_spaced": HEADER + b'"2026-11-03T08:00:00Z","mill"," 200 ",\n',
    "odd_numbers": HEADER + b"2026-11-03T08:00:00Z,mill,1e3,+.5\n2026-11-03T08:01Z,mill,5.,0\n",
}
# A good row, then one bad row (line 3); then whole files that are wrong in other ways.
BAD_ROWS = {
    "no_offset": b"2026-11-03T08:02:00,mill,200,104.0",
    "bad_date": b"2026-11-31T08:02:00Z,mill,200,104.0",
    "unknown_machine": b"2026-11-03T08:02:00Z,drill,200,104.0",
    "negative_power": b"2026-11-03T08:02:00Z,mill,-5,104.0",
    "above_rated": b"2026-11-03T08:02:00Z,mill,7000,104.0",
    "not_a_number": b"2026-11-03T08:02:00Z,mill,abc,104.0",
    "nan": b"2026-11-03T08:02:00Z,mill,nan,104.0",
    "empty_watts": b"2026-11-03T08:02:00Z,mill,,104.0",
    "infinite_wh": b"2026-11-03T08:02:00Z,mill,5,inf",
    "nan_wh": b"2026-11-03T08:02:00Z,mill,5,nan",
    "nan_wh_uppercase": b"2026-11-03T08:02:00Z,mill,5,NaN",
    "negative_infinite_wh": b"2026-11-03T08:02:00Z,mill,5,-inf",
    "negative_wh": b"2026-11-03T08:02:00Z,mill,200,-1",
    "empty_time": b",mill,200,1",
    "short_row": b"2026-11-03T08:02:00Z,mill,200",
    "before_2020": b"1970-01-01T00:00:05Z,mill,200,104.0",
    "year_1": b"0001-01-01T00:00:00+01:00,mill,200,104.0",
    "stray_quote": b'"a\rb',
}
BAD = {name: HEADER + ROWS[0] + b"\n" + row + b"\n" for name, row in BAD_ROWS.items()} | {
    "rule_before_parse_error": HEADER
    + b"2026-11-03T08:01:00Z,mill,-1,\n2026-11-03T08:02:00,mill,5,\n",
    "bad_header": b"time,machine,power\n",
    "empty_file": b"",
}


def _read(path: Path, fast: bool) -> ReadingRows | str:
    cfg = load_config(write_shop(path.parent))
    try:
        return csv_rows(path, cfg.machines, fast=fast)
    except InputError as err:
        return str(err)


def _same(a: ReadingRows | str, b: ReadingRows | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for x, y in ((a.machine, b.machine), (a.t_ms, b.t_ms), (a.watts, b.watts), (a.wh, b.wh)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", [*GOOD, *BAD])
def test_pyarrow_and_the_csv_module_read_every_file_alike(tmp_path: Path, name: str) -> None:
    path = tmp_path / "readings.csv"
    path.write_bytes(GOOD.get(name) or BAD[name])
    fast, exact = _read(path, fast=True), _read(path, fast=False)
    _same(fast, exact)
    assert isinstance(exact, str) == (name in BAD), exact
    if isinstance(exact, str):
        assert exact.startswith(f"{path}"), exact  # one line naming the file (and the line)


@pytest.mark.parametrize("fast", [True, False], ids=["pyarrow", "csv"])
@pytest.mark.parametrize("name", ["nan_wh", "infinite_wh"])
def test_a_nan_or_infinite_counter_is_an_error_not_a_reading_without_one(
    tmp_path: Path, fast: bool, name: str
) -> None:
    # Only an empty wh cell means "no counter": a logger's 'nan' was taken for one.
    path = tmp_path / "readings.csv"
    path.write_bytes(BAD[name])
    text = BAD_ROWS[name].rsplit(b",", 1)[1].decode()
    reason = "not a finite number (leave the cell empty for none)"
    assert _read(path, fast) == f"{path} line 3: wh = {text!r}: {reason}"


def test_a_row_seen_twice_keeps_the_first_and_counts_the_conflict(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_bytes(GOOD["plain"])
    replayed, stored = replay_readings(load_config(write_shop(tmp_path)), path)
    assert stored["mill"].watts.tolist() == [200.0, 1500.0]
    assert (replayed.rows, replayed.duplicates, replayed.conflicts) == (5, 2, 1)


@pytest.mark.parametrize("fast", [True, False], ids=["pyarrow", "csv"])
def test_small_blocks_read_like_one_block_and_name_the_right_line(
    tmp_path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = series("mill", "2026-11-02 00:00", "2026-11-02 03:00", []).lines()
    text = HEADER + "\n".join([*lines, *lines[:5]]).encode() + b"\n"  # repeats in a later block
    path = tmp_path / "readings.csv"
    path.write_bytes(text.replace(b"\n", b"\r\n", 40))  # CRLF in the first lines only
    whole = _read(path, fast)
    monkeypatch.setattr(csvfile, "_BLOCK", 100)  # a line or two per block
    _same(_read(path, fast), whole)
    bad = text.replace(lines[150].encode(), lines[150].replace(",mill,", ",drill,").encode())
    path.write_bytes(bad)
    assert f"line {152}: machine = 'drill'" in str(_read(path, fast))


def test_a_bad_row_in_the_last_block_leaves_the_ledger_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_shop(tmp_path)
    lines = series("mill", "2026-11-02 00:00", "2026-11-03 00:00", []).lines()
    first = tmp_path / "first.csv"
    first.write_text("\n".join(["time,machine,watts,wh", *lines[:100]]) + "\n")
    assert shopwatt("replay", "--config", config, "--input", first).exit_code == 0
    before = sha256(ledger_path(config)), dump(config, "chunks"), dump(config, "rows")
    monkeypatch.setattr(csvfile, "_BLOCK", 4096)  # staged many blocks before the bad row
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(["time,machine,watts,wh", *lines, lines[-1] + "x"]) + "\n")
    result = shopwatt("replay", "--config", config, "--input", bad)
    assert result.exit_code == 2
    assert f"line {len(lines) + 2}: wh = " in result.output
    assert (sha256(ledger_path(config)), dump(config, "chunks"), dump(config, "rows")) == before


def _peak_rss_mb(folder: Path, rows: int) -> float:
    """Peak RSS of `shopwatt replay` of a file with `rows` rows (3 machines, 1 Hz)."""
    folder.mkdir()
    config = write_shop(folder)
    t = np.datetime64("2026-11-02T00:00:00") + np.arange(rows // 2)
    stamps = np.datetime_as_string(t, unit="s").astype(object) + "Z"
    with (folder / "readings.csv").open("w") as fh:
        fh.write("time,machine,watts,wh\n")
        for k, stamp in enumerate(stamps.tolist()):
            # Jobs of an hour, an hour apart (a week-long job is recomputed as one piece).
            watts = 1500 + k % 7 if k // 3600 % 2 else 20
            fh.write(f"{stamp},mill,{watts},{k * 0.4:.1f}\n{stamp},lathe,100,\n")
    return replay_peak_rss_mb(config, folder / "readings.csv")


def test_replay_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Both long enough to fill the fixed working set (blocks, SQLite's page cache).
    half = _peak_rss_mb(tmp_path / "half", 500_000)
    whole = _peak_rss_mb(tmp_path / "whole", 1_000_000)  # ~40 MB: once ~100 MB more RSS
    assert whole - half < 30, (half, whole)


def test_a_bad_row_ends_replay_with_one_line_and_exit_2_never_an_abort(tmp_path: Path) -> None:
    # pyarrow's thread pool, alive at exit, aborted 3 runs in 8 here ("terminate called
    # without an active exception", exit 134) after the right error line.
    config = write_shop(tmp_path)
    path = tmp_path / "readings.csv"
    path.write_bytes(HEADER + b"2026-11-03T08:00:00Z,mill,nan,1\n")
    command = [sys.executable, "-m", "gateway", "replay", "--config", str(config)]
    for _ in range(10):
        done = subprocess.run([*command, "--input", str(path)], capture_output=True, text=True)
        assert (done.returncode, done.stderr.splitlines()) == (
            2,
            [f"shopwatt: error: {path} line 2: watts = 'nan': missing or not a number"],
        )


def test_without_pyarrow_readings_are_read_with_the_csv_module(tmp_path: Path) -> None:
    # An install without the fast-replay extra (32-bit Raspberry Pi OS has no pyarrow).
    path = tmp_path / "readings.csv"
    path.write_bytes(GOOD["plain"])
    cfg = load_config(write_shop(tmp_path))
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = sys.modules['pyarrow.csv'] = None  # not installed\n"
        "from gateway.config import load_config\n"
        "from gateway.inputs.csvfile import HAVE_PYARROW, ReadingsCsv\n"
        "r = ReadingsCsv(sys.argv[1], load_config(sys.argv[2]).machines)\n"
        "print(HAVE_PYARROW, [w for b in r.batches() for w in b.watts.tolist()])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(cfg.source)], capture_output=True, text=True
    )
    assert done.stdout.split(maxsplit=1) == ["False", "[200.0, 900.0, 1500.0, 250.0, 200.0]\n"], (
        done.stderr
    )
