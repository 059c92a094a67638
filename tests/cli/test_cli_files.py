"""Files the CLI writes: never over the shop's data, no half files, no formulas; one error line."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from contextlib import closing
from pathlib import Path

import openpyxl
import pytest

from gateway.errors import OutputError
from gateway.outfile import output_file
from tests.ledger.shop import ledger_path, series, sha256, shopwatt, write_readings, write_shop

RANGE = ("--from", "2026-11-03", "--to", "2026-11-05")
# Customers as anyone booking a job may type them: each would be a formula in a spreadsheet.
CUSTOMERS = ("=1+2", '=HYPERLINK("http://127.0.0.1/x","y")', "@SUM(A1)", "+49 30 1234", "-x-")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replayed lathe with one explicit job per dangerous customer name."""
    folder = tmp_path_factory.mktemp("shop")
    config = write_shop(folder)
    lathe = series("lathe", "2026-11-03 06:00", "2026-11-04 20:00", [])
    readings = write_readings(folder / "r.csv", lathe.lines())
    with (folder / "jobs.csv").open("w", newline="") as fh:
        jobs = csv.writer(fh)
        jobs.writerow(["job_id", "machine", "start", "end", "customer"])
        for k, customer in enumerate(CUSTOMERS):
            start, end = (
                f"2026-11-03T{9 + k:02d}:00:00+01:00",
                f"2026-11-03T{9 + k:02d}:30:00+01:00",
            )
            jobs.writerow([f"J-{k}", "lathe", start, end, customer])
    result = shopwatt(
        "replay",
        "--config",
        config,
        "--input",
        readings,
        "--jobs",
        folder / "jobs.csv",
        "--create-customers",
    )
    assert result.exit_code == 0, result.output
    return config


def _export(config: Path, *extra: str | Path) -> tuple[int, str]:
    result = shopwatt("export", "--config", config, *RANGE, *extra)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    "target",
    [
        "data/ledger.sqlite",
        "data/../data/ledger.sqlite",
        "shop.toml",
        "data/outbox.db",  # not there yet: still the outbox's name
        "data/ledger.sqlite-wal",
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_export_never_writes_over_the_ledger_outbox_or_config(
    shop: Path, target: str, force: bool
) -> None:
    before = {p: sha256(p) for p in (shop, ledger_path(shop))}
    code, err = _export(shop, "--output", shop.parent / target, *(["--force"] if force else []))
    assert code == 2
    assert "which shopwatt never writes over" in err and len(err.splitlines()) == 1
    assert {p: sha256(p) for p in before} == before
    assert not (shop.parent / "data" / "outbox.db").exists()


def test_export_refuses_a_link_to_the_ledger(shop: Path, tmp_path: Path) -> None:
    hard, soft = tmp_path / "hard.csv", tmp_path / "soft.csv"
    os.link(ledger_path(shop), hard)
    soft.symlink_to(ledger_path(shop))
    before = sha256(ledger_path(shop))
    for link in (hard, soft):
        code, err = _export(shop, "--output", link, "--force")
        assert code == 2 and "never writes over" in err
    assert sha256(ledger_path(shop)) == before


def test_an_existing_file_is_replaced_only_with_force(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "costs.csv"
    out.write_text("the accountant's own notes\n")
    code, err = _export(shop, "--output", out)
    assert code == 2
    assert err == f"shopwatt: error: --output {out}: the file exists; use --force to replace it\n"
    assert out.read_text() == "the accountant's own notes\n"
    assert _export(shop, "--output", out, "--force")[0] == 0
    assert out.read_text().startswith("kind,job_id,")


def test_a_missing_folder_is_one_error_line(shop: Path, tmp_path: Path) -> None:
    code, err = _export(shop, "--output", tmp_path / "nodir" / "x.csv")
    assert code == 2
    assert err == f"shopwatt: error: --output {tmp_path / 'nodir' / 'x.csv'}: the folder " + (
        f"{tmp_path / 'nodir'} does not exist\n"
    )


def test_a_failed_write_leaves_no_half_file(tmp_path: Path) -> None:
    target = tmp_path / "costs.csv"
    with pytest.raises(RuntimeError), output_file(target) as fh:
        fh.write(b"kind,job_id\nhalf a line")
        raise RuntimeError("the disk is full")
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(OutputError, match="never writes over"),
        output_file(target, protected=[tmp_path / "costs.csv"]),
    ):
        pass


@pytest.mark.parametrize(("fmt", "name"), [("csv", "y.xlsx"), ("xlsx", "y.csv"), ("csv", "Y.XLSX")])
def test_a_format_that_contradicts_the_file_name_is_refused(
    shop: Path, tmp_path: Path, fmt: str, name: str
) -> None:
    code, err = _export(shop, "--format", fmt, "--output", tmp_path / name)
    assert code == 2 and "names a ." in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_csv_text_a_spreadsheet_would_run_is_neutralised(shop: Path) -> None:
    result = shopwatt("export", "--config", shop, *RANGE)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    customers = {r["job_id"]: r["customer"] for r in rows if r["kind"] == "job"}
    assert customers == {f"J-{k}": "'" + c for k, c in enumerate(CUSTOMERS)}
    for line in result.stdout.splitlines()[1:]:
        # A spreadsheet that splits at ';' or ',' still sees each text cell whole.
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), line
    # Numbers stay numbers (an adjustment's negative cost is not text).
    assert ',"EUR"' in result.stdout and ",0.00," in result.stdout


def test_xlsx_text_cells_are_never_formulas(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "costs.xlsx"
    assert _export(shop, "--output", out)[0] == 0
    sheet = openpyxl.load_workbook(out)["rows"]
    # The header is below the title block (site, period, ...).
    head = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == "kind")
    header = [c.value for c in sheet[head]]
    col = header.index("customer") + 1
    cells = {sheet.cell(r, 2).value: sheet.cell(r, col) for r in range(head + 1, sheet.max_row)}
    for k, customer in enumerate(CUSTOMERS):
        cell = cells[f"J-{k}"]
        assert (cell.value, cell.data_type) == (customer, "s")
        assert cell.quotePrefix
    with zipfile.ZipFile(out) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        assert not any(b"<f>" in book.read(n) for n in sheets)


def test_the_same_rows_give_a_byte_identical_xlsx(shop: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    assert _export(shop, "--output", first)[0] == 0
    assert _export(shop, "--output", second)[0] == 0
    assert first.read_bytes() == second.read_bytes()
    # No clock inside: the same bytes a year later, not only a second later.
    props = openpyxl.load_workbook(first).properties
    assert (props.created.year, props.modified.year) == (1980, 1980)
    with zipfile.ZipFile(first) as book:
        assert {info.date_time for info in book.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_repeated_option_is_an_error_not_the_last_one(shop: Path) -> None:
    readings = shop.parent / "r.csv"
    result = shopwatt("replay", "--config", shop, "--input", readings, "--input", readings)
    assert result.exit_code == 2
    assert result.stderr == "shopwatt replay: error: --input given more than once (see --help)\n"
    result = shopwatt("export", "--config", shop, *RANGE, "--to", "2026-11-06")
    assert result.exit_code == 2 and "--to given more than once" in result.stderr
    drop = ["--machine", "mill", "--from", "2026-11-03T10:00:00Z", "--to", "2026-11-03T11:00:00Z"]
    result = shopwatt("readings", "drop", "--config", shop, *drop, "--machine", "lathe", "--yes")
    assert result.exit_code == 2 and "--machine given more than once" in result.stderr


def test_recompute_reports_the_data_s_days_not_an_internal_piece(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    mill = series("mill", "2026-11-03 06:00", "2026-11-04 20:00", [])
    assert (
        shopwatt(
            "replay",
            "--config",
            config,
            "--input",
            write_readings(tmp_path / "r.csv", mill.lines()),
        ).exit_code
        == 0
    )
    result = shopwatt("recompute", "--config", config, "--all")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["recomputed mill: 2026-11-03 .. 2026-11-04"]
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        detail = conn.execute("SELECT detail FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert json.loads(detail)["recomputed"] == {"mill": ["2026-11-03", "2026-11-04"]}


BAD_ROWS = ("nan", "-5", "1e12")


@pytest.mark.parametrize("watts", BAD_ROWS)
def test_a_bad_row_is_one_line_and_exit_2_from_a_real_process(tmp_path: Path, watts: str) -> None:
    """Not in-process: the abort (exit 134) happened at interpreter exit."""
    config = write_shop(tmp_path)
    mill = series("mill", "2026-11-03 00:00", "2026-11-10 00:00", [], step_s=10)
    lines = mill.lines()
    time, machine, _, wh = lines[len(lines) // 2].split(",")
    lines[len(lines) // 2] = ",".join([time, machine, watts, wh])
    path = write_readings(tmp_path / "bad.csv", lines)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "replay", "--config", config, "--input", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"shopwatt: error: {path} line ")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not ledger_path(config).exists()


def test_a_wrong_command_line_is_one_error_line(shop: Path) -> None:
    for args in (["export", "--config", shop], ["exprt"], ["export", "--config", shop, "--x"]):
        result = shopwatt(*args)
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1 and " error: " in result.stderr, args
