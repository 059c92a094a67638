"""Members and their prepaid hours through the CLI: drawdown, statement, the prepaid view,
a closed month corrected in the next open one, and user errors as one line."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.config import load_config
from gateway.engine.model import ExplicitJob, MachineReadings
from gateway.ledger import Ledger, members, schema
from tests.ledger.shop import (
    export_rows,
    ledger_path,
    local_ms,
    ok,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

# Job hours: the mill's job 08:00-09:00 is 1 h, the lathe's 10:00-12:00 is 2 h.
MILL = series(
    "mill",
    "2026-11-03 07:00",
    "2026-11-03 13:00",
    [("2026-11-03 08:00", "2026-11-03 09:00", 3000.0)],
)
LATHE = series(
    "lathe",
    "2026-11-03 07:00",
    "2026-11-03 13:00",
    [("2026-11-03 10:00", "2026-11-03 12:00", 2500.0)],
)
PRICING = '\n[pricing.machine.lathe]\nper_hour = 30.0\nhours = "job_hours"\n'


def _shop(tmp_path: Path) -> Path:
    config = write_shop(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + PRICING, encoding="utf-8")
    c = ("--config", config)
    ok("member", "add", "ada", "--name", "Ada Lab", "--weight", "mill=2.0", "--weight", "*=1", *c)
    ok("customer", "add", "bob", *c)
    # 3 credits for 120.00 (40.00 a credit), valid until the end of March.
    ok(
        "member",
        "topup",
        "ada",
        "--hours",
        "3",
        "--price",
        "120.00",
        "--date",
        "2026-11-01",
        "--valid-until",
        "2027-03-31",
        *c,
    )
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "job_id,machine,start,end,customer\n"
        "M1,mill,2026-11-03T08:00:00+01:00,2026-11-03T09:00:00+01:00,ada\n"
        "L1,lathe,2026-11-03T10:00:00+01:00,2026-11-03T12:00:00+01:00,ada\n",
        encoding="utf-8",
    )
    readings = write_readings(tmp_path / "r.csv", MILL.lines() + LATHE.lines())
    ok("replay", "--input", readings, "--jobs", jobs, *c)
    return config


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_jobs_draw_the_block_down_and_the_rest_is_charged(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    # M1: 1 h x 2.0 = 2 credits; L1: 2 h x 1 = 2 credits, the block's last 1 drawn, 1 charged:
    # the lathe's price 2 h x 30.00 = 60.00, half of it not covered: 30.00.
    rows = ok("export", "--config", config, "--month", "2026-11")
    lathe = next(r for r in csv.DictReader(rows.splitlines()) if r["job_id"] == "L1")
    assert lathe["price"] == "30.00"
    out = tmp_path / "ada.csv"
    ok("member", "statement", "ada", "--month", "2026-11", "--output", out, "--config", config)
    lines = [
        (r["kind"], r["job_id"], r["credits"], r["charged_credits"], r["charged"])
        for r in _csv(out)
    ]
    assert lines == [
        ("opening balance", "", "0.0000", "", ""),
        ("purchase", "", "3.0000", "", ""),
        ("draw", "M1", "-2.0000", "", ""),
        ("draw", "L1", "-1.0000", "1.0000", "30.00"),
        ("closing balance", "", "0.0000", "", ""),
    ]
    prepaid = tmp_path / "prepaid.csv"
    ok("export", "--view", "prepaid", "--month", "2026-11", "--output", prepaid, "--config", config)
    figures = [
        (r["member"], r["opening"], r["received"], r["recognised"], r["closing"])
        for r in _csv(prepaid)
    ]
    assert figures == [
        ("ada", "0.00", "120.00", "120.00", "0.00"),
        ("total", "0.00", "120.00", "120.00", "0.00"),
    ]


def test_a_job_reassigned_after_close_gives_back_in_the_open_month(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    c = ("--config", config)
    ok("close", "--month", "2026-11", "--yes", *c)
    november = ok("export", "--view", "prepaid", "--month", "2026-11", *c)
    ok("job", "assign", "L1", "--customer", "bob", *c)
    # Frozen: November's view does not change.
    assert ok("export", "--view", "prepaid", "--month", "2026-11", *c) == november
    # December: the reversal of L1's 2 credits first takes back the charged one (-30.00),
    # then returns 1 credit to the block: 40.00 back in deferred revenue.
    out = tmp_path / "dec.csv"
    ok("export", "--view", "prepaid", "--month", "2026-12", "--output", out, *c)
    ada = _csv(out)[0]
    assert (ada["opening"], ada["received"], ada["recognised"], ada["closing"]) == (
        "0.00",
        "0.00",
        "-40.00",
        "40.00",
    )
    statement = tmp_path / "ada-dec.csv"
    ok("member", "statement", "ada", "--month", "2026-12", "--output", statement, *c)
    moved = [(r["kind"], r["job_id"], r["credits"], r["charged"]) for r in _csv(statement)]
    assert moved[1] == ("return", "L1", "1.0000", "-30.00")
    assert moved[-1][:3] == ("closing balance", "", "1.0000")


def test_a_purchase_dated_in_a_closed_month_is_refused(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    ok("close", "--month", "2026-11", "--yes", "--config", config)
    bad = shopwatt(
        "member",
        "topup",
        "ada",
        "--hours",
        "1",
        "--price",
        "40",
        "--date",
        "2026-11-20",
        "--config",
        config,
    )
    assert bad.exit_code == 2
    assert "--date = 2026-11-20: 2026-11 is closed" in bad.stderr


def test_a_bad_subscription_month_names_its_option(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    args = ("member", "subscribe", "ada", "--hours", "2", "--price", "10", "--config", config)
    bad = shopwatt(*args, "--from", "2026-13")
    assert bad.exit_code == 2 and "--from = '2026-13': expected a month as YYYY-MM" in bad.stderr
    bad = shopwatt(*args, "--from", "2026-11", "--to", "27-01")
    assert bad.exit_code == 2 and "--to = '27-01': expected a month as YYYY-MM" in bad.stderr


def test_a_weight_for_an_unknown_machine_names_the_value(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    bad = shopwatt("member", "add", "ada", "--weight", "laser=1.0", "--config", config)
    assert bad.exit_code == 2
    assert "--weight = 'laser=1.0': expected MACHINE=CREDITS_PER_HOUR" in bad.stderr
    bad = shopwatt("member", "add", "ada", "--weight", "mill=1.00001", "--config", config)
    assert "--weight mill = '1.00001': expected a number >= 0 with at most 4 decimals" in bad.stderr


def test_topping_up_someone_who_is_no_member_points_to_member_add(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    assert shopwatt("customer", "add", "acme", "--config", config).exit_code == 0
    args = ("--hours", "5", "--price", "100", "--config", config)
    stranger = shopwatt("member", "topup", "ada", *args)
    assert stranger.exit_code == 2
    # `member add` adds the customer too: `customer add` alone would not make a member.
    assert stranger.stderr == (
        "shopwatt: error: member = 'ada': no member or customer has that name (members: none "
        "yet); add one with `shopwatt member add`\n"
    )
    customer = shopwatt("member", "topup", "acme", *args)
    assert "member = 'acme': customer 'acme' has no membership (members: none yet)" in (
        customer.stderr
    )


def test_the_last_month_there_is_has_a_statement_and_a_prepaid_view(tmp_path: Path) -> None:
    # No date follows 9999-12: its end was computed as a month that cannot exist (a crash).
    config = _shop(tmp_path)
    c = ("--month", "9999-12", "--config", config)
    assert "9999-12  closing balance" in ok("member", "statement", "ada", *c)
    assert "to: 9999-12-31" in ok("export", "--view", "prepaid", *c)


def test_status_and_member_show_warn_of_a_low_balance(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    shown = ok("member", "show", "ada", "--on", "2026-11-02", "--config", config)
    assert "balance on 2026-11-02: 3.0000 credits" in shown and "low balance" not in shown
    shown = ok("member", "show", "Ada Lab", "--on", "2026-11-03", "--config", config)
    assert "ada: low balance: 0.0000 credits left" in shown  # below the default 2 credits
    assert "ada: low balance: 0.0000 credits left" in ok("status", "--config", config)


def test_the_statement_as_xlsx_has_numbers_not_text(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    config = _shop(tmp_path)
    out = tmp_path / "ada.xlsx"
    ok("member", "statement", "ada", "--month", "2026-11", "--output", out, "--config", config)
    sheet = load_workbook(out).active
    assert sheet is not None
    assert sheet["A1"].value == "Prepaid hours Ada Lab"
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    l1 = next(v for v in values if "L1" in v)
    assert (l1[6], l1[8]) == (-1, 30)  # credits and the charged 30.00, as numbers


def test_a_card_is_one_members_and_found_by_its_uid(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    c = ("--weight", "*=1", "--config", config)
    ok("member", "add", "ada", "--card", "04:a1:b2:c3", *c)
    assert "04A1B2C3" in ok("member", "list", "--config", config)
    taken = shopwatt("member", "add", "bob", "--card", "04A1B2C3", *c)
    assert taken.exit_code == 2 and "--card = '04A1B2C3': already the card of 'ada'" in taken.stderr
    bad = shopwatt("member", "add", "bob", "--card", "04A1B2", *c)
    assert bad.exit_code == 2
    assert "expected the card's UID in hex (8, 14 or 20 digits)" in bad.stderr
    with closing(schema.connect(ledger_path(config))) as conn:
        found = members.by_card(conn, "04 A1 B2 C3")
    assert found is not None and found.id == "ada"


def test_a_closed_months_prepaid_view_is_the_one_its_close_froze(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    c = ("--config", config)
    ok("close", "--month", "2026-11", "--yes", *c)
    out = tmp_path / "nov.csv"
    # Whatever changes afterwards (here the purchase itself, by hand in the file), the
    # closed month's figures stay what was handed over.
    with closing(sqlite3.connect(ledger_path(config))) as conn, conn:
        conn.execute("UPDATE blocks SET price_cents = 99900")
    ok("export", "--view", "prepaid", "--month", "2026-11", "--output", out, *c)
    ada = _csv(out)[0]
    assert (ada["received"], ada["recognised"], ada["closing"]) == ("120.00", "120.00", "0.00")


def test_status_still_works_and_warns_when_shop_toml_changed(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    config.write_text(config.read_text().replace("rate = 0.2\n", "rate = 0.3\n"), encoding="utf-8")
    shown = ok("status", "--config", config)
    assert "CHANGED: run recompute" in shown and "ada: low balance" in shown


def test_a_ledger_set_back_before_the_members_step_runs_it_again(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    with closing(sqlite3.connect(ledger_path(config))) as conn, conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION - 1}")
    # The step runs again over its own tables: the members and their purchases are kept.
    shown = ok("member", "show", "ada", "--on", "2026-11-02", "--config", config)
    assert "balance on 2026-11-02: 3.0000 credits" in shown
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION


def test_a_job_started_with_a_members_card_is_the_members(tmp_path: Path) -> None:
    config = write_shop(tmp_path)
    c = ("--config", config)
    ok(
        "member",
        "add",
        "ada",
        "--name",
        "Ada Lab",
        "--card",
        "04a1b2c3d4e5f6",
        "--weight",
        "*=1",
        *c,
    )
    mill = series("mill", "2026-11-03 07:00", "2026-11-03 13:00", [
        ("2026-11-03 08:00", "2026-11-03 09:00", 3000.0),
        ("2026-11-03 10:00", "2026-11-03 11:00", 3000.0),
    ])  # fmt: skip
    ledger = Ledger(load_config(config))
    batch = MachineReadings(mill.t_ms, mill.watts, mill.wh)
    tapped = [
        # The sensor's card reader sends the UID and no customer; an unknown card stays so.
        ExplicitJob("T-1", local_ms("2026-11-03 08:00"), local_ms("2026-11-03 09:00"), "", 0,
                    "04A1B2C3D4E5F6"),
        ExplicitJob("T-2", local_ms("2026-11-03 10:00"), local_ms("2026-11-03 11:00"), "", 0,
                    "0A0B0C0D"),
    ]  # fmt: skip
    ledger.ingest({"mill": batch}, "live", jobs={"mill": [tapped]})
    rows = export_rows(config, "2026-11-03", "2026-11-04")
    assert {r["job_id"]: r["customer"] for r in rows if r["kind"] == "job"} == {
        "T-1": "ada",
        "T-2": "",
    }
