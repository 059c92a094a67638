"""Customers as ledger data: add, list, rename, merge; jobs.csv must name known customers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.ledger import schema
from tests.ledger.shop import dump, ledger_path, ok, series, shopwatt, write_readings, write_shop

MILL = series(
    "mill",
    "2026-11-03 07:00",
    "2026-11-03 12:00",
    [("2026-11-03 08:00", "2026-11-03 09:00", 3000.0)],
)


def _jobs(path: Path, customer: str) -> Path:
    path.write_text(
        "job_id,machine,start,end,customer\n"
        "WO-1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00,\n"
        f"WO-2,mill,2026-11-03T10:00:00+01:00,2026-11-03T10:30:00+01:00,{customer}\n",
        encoding="utf-8",
    )
    return path


def _customer_of(config: Path, job_id: str) -> str:
    return next(str(r[4]) for r in dump(config, "rows") if r[2] == job_id)


def _replay(config: Path, jobs: Path, *more: str) -> None:
    readings = write_readings(config.parent / "r.csv", MILL.lines())
    ok("replay", "--config", config, "--input", readings, "--jobs", jobs, *more)


def test_names_match_case_and_space_insensitively_and_jobs_carry_the_id(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--vat-id", "DE123", "--config", config)
    _replay(config, _jobs(tmp_path / "jobs.csv", "  acme   gmbh "))
    assert _customer_of(config, "WO-2") == "acme"
    listed = ok("customer", "list", "--config", config)
    assert "ACME GmbH" in listed and "DE123" in listed


def test_an_unknown_customer_is_refused_with_its_line_and_the_closest_ids(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", config)
    ok("customer", "add", "beta", "--name", "Beta Design", "--config", config)
    readings = write_readings(tmp_path / "r.csv", MILL.lines())
    jobs = _jobs(tmp_path / "jobs.csv", "ACME GmbHH")
    result = shopwatt("replay", "--config", config, "--input", readings, "--jobs", jobs)
    assert result.exit_code == 2
    assert f"{jobs} line 3: customer 'ACME GmbHH' is not known (closest: acme)" in result.stderr
    assert "--create-customers" in result.stderr
    # Nothing was written: the replay is one transaction.
    assert dump(config, "rows") == []


def test_an_option_naming_no_customer_lists_the_known_ones_and_no_replay_flag(
    tmp_path: Path,
) -> None:
    config = write_shop(tmp_path)
    _replay(config, _jobs(tmp_path / "jobs.csv", ""))
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", config)
    ok("customer", "add", "beta", "--name", "Beta Design", "--config", config)
    far = shopwatt("export", "--config", config, "--month", "2026-11", "--customer", "zz")
    assert far.exit_code == 2
    # Customers exist: name them (not "no customers yet"); export has no --create-customers.
    assert far.stderr.strip().endswith(
        "--customer: customer 'zz' is not known (known: acme, beta); add it with "
        "`shopwatt customer add`"
    )
    blank = shopwatt("statement", "--config", config, "--month", "2026-11", "--customer", " ")
    assert blank.exit_code == 2
    assert "--customer = ' ': give a customer's id or display name" in blank.stderr


def test_create_customers_adds_the_unknown_ones_with_an_audit_entry(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    _replay(config, _jobs(tmp_path / "jobs.csv", "Gamma Works"), "--create-customers")
    assert _customer_of(config, "WO-2") == "Gamma Works"
    assert "Gamma Works" in ok("customer", "list", "--config", config)
    conn = sqlite3.connect(ledger_path(config))
    actions = [a for (a,) in conn.execute("SELECT action FROM audit ORDER BY id")]
    conn.close()
    assert actions == ["customer add", "replay"]


def test_a_customer_name_is_never_taken_twice(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", config)
    again = shopwatt("customer", "add", "acme2", "--name", "acme gmbh", "--config", config)
    assert again.exit_code == 2
    assert "customer 'acme gmbh' already exists as 'acme' (ACME GmbH)" in again.stderr


def test_rename_keeps_the_id_and_merge_moves_the_rows(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", config)
    ok("customer", "add", "acme-old", "--name", "Acme (old)", "--config", config)
    _replay(config, _jobs(tmp_path / "jobs.csv", "acme-old"))
    ok("customer", "rename", "ACME GMBH", "--name", "ACME Fertigung GmbH", "--config", config)
    assert "merged acme-old into acme: 1 rows moved" in ok(
        "customer", "merge", "acme-old", "--into", "acme", "--config", config
    )
    assert _customer_of(config, "WO-2") == "acme"
    # The old id still resolves (an old jobs.csv replayed again), to the customer kept.
    _replay(config, _jobs(tmp_path / "jobs.csv", "Acme-Old"))
    assert _customer_of(config, "WO-2") == "acme"
    status = ok("status", "--config", config)
    assert "customer merge" in status and "customer rename" in status


def test_a_ledger_of_the_first_schema_is_migrated_on_open(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    ledger_path(config).parent.mkdir(parents=True)
    conn = sqlite3.connect(ledger_path(config))
    conn.executescript(f"{schema._DDL} PRAGMA user_version = 1;")  # as shopwatt 1 made it
    conn.close()
    ok("customer", "add", "acme", "--config", config)
    _replay(config, _jobs(tmp_path / "jobs.csv", "acme"))
    assert _customer_of(config, "WO-2") == "acme"
    conn = sqlite3.connect(ledger_path(config))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()
