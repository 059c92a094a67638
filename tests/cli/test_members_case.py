"""tests/cases/members through the commands its README lists: every figure worked by hand."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.ledger.shop import ok

CASE = Path(__file__).parents[1] / "cases" / "members"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, ...]]]:
    """The case's shop after every command of its README; October's view before late data."""
    folder = tmp_path_factory.mktemp("members")
    for name in ("shop.toml", "readings.csv", "jobs.csv", "jobs-late.csv"):
        shutil.copy(CASE / name, folder / name)
    config = folder / "shop.toml"

    def run(*args: str) -> str:
        return ok(*args, "--config", config)

    run(
        "member", "add", "ada", "--name", "Ada Lab", "--weight", "laser=1.0", "--weight", "mill=2.0"
    )
    run("member", "add", "cafe", "--name", "Café Nord", "--weight", "laser=1", "--weight", "mill=2")
    topup = ("member", "topup", "ada", "--hours")
    run(*topup, "10", "--price", "400", "--date", "2026-10-01", "--valid-until", "2026-10-31")
    run(*topup, "20", "--price", "700", "--date", "2026-10-05", "--valid-until", "2026-11-30")
    run(
        "member",
        "subscribe",
        "cafe",
        "--hours",
        "6",
        "--price",
        "150",
        "--from",
        "2026-10",
        "--carry-over",
        "--cap",
        "3",
    )
    run("replay", "--input", str(folder / "readings.csv"), "--jobs", str(folder / "jobs.csv"))
    october = _prepaid(config, "2026-10")
    run("close", "--month", "2026-10", "--yes")
    late = run("replay", "--jobs", str(folder / "jobs-late.csv"))
    assert "1 adjustment rows pending for closed months" in late
    return config, october


def _csv(config: Path, *args: str) -> list[dict[str, str]]:
    out = config.parent / "out.csv"
    out.unlink(missing_ok=True)
    ok(*args, "--output", out, "--config", config)
    with out.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _prepaid(config: Path, month: str) -> list[tuple[str, ...]]:
    found = _csv(config, "export", "--view", "prepaid", "--month", month)
    return [
        (r["member"], r["opening"], r["received"], r["recognised"], r["closing"]) for r in found
    ]


OCTOBER = [
    ("ada", "0.00", "1100.00", "435.00", "665.00"),
    ("cafe", "0.00", "150.00", "75.00", "75.00"),
    ("total", "0.00", "1250.00", "510.00", "740.00"),
]


def test_october_deferred_revenue_and_frozen_after_the_close(
    shop: tuple[Path, list[tuple[str, ...]]],
) -> None:
    config, before_late_data = shop
    assert before_late_data == OCTOBER
    assert _prepaid(config, "2026-10") == OCTOBER  # the late data changed nothing here


def test_november_deferred_revenue_reconciles(shop: tuple[Path, list[tuple[str, ...]]]) -> None:
    config, _ = shop
    assert _prepaid(config, "2026-11") == [
        ("ada", "665.00", "0.00", "665.00", "0.00"),
        ("cafe", "75.00", "150.00", "150.00", "75.00"),
        ("total", "740.00", "150.00", "815.00", "75.00"),
    ]


def test_the_job_larger_than_the_balance_is_charged_for_the_rest(
    shop: tuple[Path, list[tuple[str, ...]]],
) -> None:
    config, _ = shop
    text = ok("export", "--month", "2026-11", "--config", config)
    price = {(r["kind"], r["job_id"]): r["price"] for r in csv.DictReader(io.StringIO(text))}
    assert price[("job", "A4")] == "90.00"  # 135.00 x 2 / 3 credits not covered
    assert price[("adjustment", "A2")] == ""  # the mill has no price list entry


def _statement(config: Path, member: str) -> list[tuple[str, ...]]:
    found = _csv(config, "member", "statement", member, "--month", "2026-11")
    names = ("kind", "job_id", "credits", "charged_credits", "charged", "carried_credits")
    return [tuple(r[n] for n in names) for r in found]


def test_statements_of_november(shop: tuple[Path, list[tuple[str, ...]]]) -> None:
    config, _ = shop
    assert _statement(config, "ada") == [
        ("opening balance", "", "19.0000", "", "", ""),
        ("draw", "A2", "-2.0000", "", "", ""),
        ("draw", "A3", "-16.0000", "", "", ""),
        ("draw", "A4", "-1.0000", "2.0000", "90.00", ""),
        ("closing balance", "", "0.0000", "", "", ""),
    ]
    assert _statement(config, "Café Nord") == [
        ("opening balance", "", "3.0000", "", "", ""),
        ("purchase", "", "6.0000", "", "", ""),
        ("draw", "C2", "-5.0000", "", "", ""),
        ("expiry", "", "-1.0000", "", "", ""),
        ("carry", "", "", "", "", "3.0000"),
        ("closing balance", "", "3.0000", "", "", ""),
    ]
