"""Jobs after the fact: assign, split, list; they survive late data, and a closed month is
corrected by adjustment rows; close asks about jobs without a customer."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.ledger.shop import (
    dump,
    export_rows,
    local_ms,
    ok,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

MILL = series(
    "mill",
    "2025-11-29 00:00",
    "2025-12-01 23:59",
    [
        ("2025-11-29 10:00", "2025-11-29 12:00", 3000.0),
        ("2025-11-30 14:00", "2025-11-30 15:00", 2500.0),
        ("2025-12-01 09:00", "2025-12-01 10:00", 2000.0),
    ],
)


def _shop(tmp_path: Path, lines: list[str] | None = None) -> Path:
    config = write_shop(tmp_path)
    readings = write_readings(tmp_path / "r.csv", MILL.lines() if lines is None else lines)
    ok("replay", "--config", config, "--input", readings)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", config)
    ok("customer", "add", "beta", "--name", "Beta Design", "--config", config)
    return config


def _jobs(config: Path) -> dict[str, tuple[object, ...]]:
    """job id -> (customer, start, end, order, parts, scrap) of the current rows."""
    return {
        str(r[2]): (r[4], r[5], r[6], r[18], r[19], r[20])
        for r in dump(config, "rows")
        if r[1] == "job"
    }


def test_an_assignment_sets_customer_order_and_parts_and_survives_late_data(tmp_path: Path) -> None:
    # The first job's last hour arrives late: the job grows, keeps its id, and keeps
    # the customer assigned to it before.
    early = MILL.lines(hi="2025-11-29 11:00") + MILL.lines(lo="2025-11-29 12:30")
    config = _shop(tmp_path, early)
    printed = ok(
        "job",
        "assign",
        "mill-20251129-001",
        "--customer",
        "acme gmbh",
        "--order",
        "PO-17",
        "--parts",
        "40",
        "--scrap",
        "2",
        "--config",
        config,
    )
    assert "acme" in printed and "PO-17" in printed
    late = write_readings(
        tmp_path / "late.csv", MILL.lines(lo="2025-11-29 11:00", hi="2025-11-29 12:30")
    )
    ok("replay", "--config", config, "--input", late)
    customer, _, end, order, parts, scrap = _jobs(config)["mill-20251129-001"]
    assert (customer, order, parts, scrap) == ("acme", "PO-17", 40, 2)
    assert end == local_ms("2025-11-29 12:00")  # the job now reaches its real end
    assert "mill-20251129-001" not in ok(
        "jobs", "--from", "2025-11-29", "--to", "2025-12-02", "--unassigned", "--config", config
    )
    assert "job assign" in ok("status", "--config", config)


def test_two_jobs_that_late_data_joins_keep_both_assignments_and_status_says_so(
    tmp_path: Path,
) -> None:
    gap = ("2025-11-29 10:50", "2025-11-29 11:20")
    config = _shop(tmp_path, MILL.lines(hi=gap[0]) + MILL.lines(lo=gap[1]))
    ok("job", "assign", "mill-20251129-001", "--customer", "acme", "--config", config)
    ok("job", "assign", "mill-20251129-002", "--customer", "beta", "--config", config)
    assert "to check" not in ok("status", "--config", config)
    late = write_readings(tmp_path / "late.csv", MILL.lines(lo=gap[0], hi=gap[1]))
    ok("replay", "--config", config, "--input", late)
    assert _jobs(config)["mill-20251129-001"][0] == "beta"  # the newest applies
    status = ok("status", "--config", config)
    assert (
        "to check: mill: job mill-20251129-001 now covers assignments that differ "
        "(mill-20251129-001: acme; mill-20251129-002: beta)"
    ) in status


def test_an_unknown_customer_or_job_is_refused_with_the_closest_names(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    bad = shopwatt("job", "assign", "mill-20251129-001", "--customer", "acmee", "--config", config)
    assert bad.exit_code == 2
    assert "--customer: customer 'acmee' is not known (closest: acme)" in bad.stderr
    bad = shopwatt("job", "assign", "mill-20251129-01", "--customer", "acme", "--config", config)
    assert bad.exit_code == 2
    assert "job 'mill-20251129-01' is not in the ledger (closest: mill-20251129-001" in bad.stderr


def test_a_split_job_becomes_two_that_are_assigned_apart(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    before = _jobs(config)["mill-20251129-001"]
    at = "2025-11-29T11:00:00+01:00"
    assert "the part from the cut on is mill-20251129-001-2" in ok(
        "job", "split", "mill-20251129-001", "--at", at, "--config", config
    )
    ok("job", "assign", "mill-20251129-001", "--customer", "acme", "--config", config)
    ok("job", "assign", "mill-20251129-001-2", "--customer", "beta", "--config", config)
    jobs = _jobs(config)
    assert jobs["mill-20251129-001"][:3] == ("acme", before[1], jobs["mill-20251129-001-2"][1])
    assert jobs["mill-20251129-001-2"][0] == "beta"
    assert jobs["mill-20251129-001-2"][2] == before[2]
    outside = shopwatt("job", "split", "mill-20251130-001", "--at", at, "--config", config)
    assert outside.exit_code == 2 and "not inside job mill-20251130-001" in outside.stderr


def test_close_lists_unassigned_jobs_and_asks(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    ok("job", "assign", "mill-20251129-001", "--customer", "acme", "--config", config)
    no = shopwatt("close", "--config", config, "--month", "2025-11")
    assert no.exit_code == 1  # answered nothing: aborted, nothing closed
    assert "1 job(s) of 2025-11 have no customer" in no.stdout
    assert "mill-20251130-001" in no.stdout and "mill-20251129-001" not in no.stdout
    assert dump(config, "frozen") == []
    # Declined: what to do next, instead of click's bare "Aborted!".
    assert "2025-11 not closed: assign them (`shopwatt job assign JOB --customer C`)" in no.stderr
    assert "Aborted" not in no.output + no.stderr
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    assert dump(config, "frozen") != []


def test_reassigning_a_job_of_a_closed_month_is_a_reversal_and_a_new_row(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    ok("job", "assign", "mill-20251129-001", "--customer", "acme", "--config", config)
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    november = export_rows(config, "2025-11-01", "2025-12-01")
    printed = ok(
        "job",
        "assign",
        "mill-20251129-001",
        "--customer",
        "beta",
        "--parts",
        "5",
        "--config",
        config,
    )
    assert "2 adjustment rows pending for closed months" in printed
    assert export_rows(config, "2025-11-01", "2025-12-01") == november  # frozen stays
    adjustments = [
        r for r in export_rows(config, "2025-12-01", "2026-01-01") if r["kind"] == "adjustment"
    ]
    by_customer = {r["customer"]: r for r in adjustments}
    assert set(by_customer) == {"acme", "beta"}
    job = next(r for r in november if r["job_id"] == "mill-20251129-001")
    assert Decimal(by_customer["acme"]["total_cost"]) == -Decimal(job["total_cost"])
    assert Decimal(by_customer["beta"]["total_cost"]) == Decimal(job["total_cost"])
    audit = ok("status", "--config", config)
    assert "job assign" in audit and "customer beta" in audit


def test_merging_a_customer_corrects_a_closed_month_by_adjustment_rows(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    ok("job", "assign", "mill-20251129-001", "--customer", "acme", "--config", config)
    ok("close", "--config", config, "--month", "2025-11", "--yes")
    moved = ok("customer", "merge", "acme", "--into", "beta", "--config", config)
    assert "merged acme into beta: 1 rows moved" in moved
    adjustments = [
        r for r in export_rows(config, "2025-12-01", "2026-01-01") if r["kind"] == "adjustment"
    ]
    assert sorted((r["customer"], r["corrects"]) for r in adjustments) == [
        ("acme", "2025-11"),
        ("beta", "2025-11"),
    ]
    # The merged id still names the customer it went to.
    ok("job", "assign", "mill-20251130-001", "--customer", "ACME", "--config", config)
    assert _jobs(config)["mill-20251130-001"][0] == "beta"
