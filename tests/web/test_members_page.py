"""The Members page in a real browser: balances per block, a top-up through the same ledger
call as `shopwatt member topup`, statements equal to `shopwatt member statement`'s files."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from agent.serviceshop import WAIT_S
from gateway.clock import now_ms
from gateway.config import load_config
from gateway.engine.localtime import local_date
from tests.web.conftest import WebServer, login, screenshot, submit
from tests.web.test_browser import _cli, _downloaded, demo_shop

__all__ = ["demo_shop"]  # the fixture, shared with the other browser tests


def _member(config: Path, command: str, *argv: str) -> str:
    """`shopwatt member COMMAND --config ... ARGV`: what it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "member", command, "--config", str(config), *argv],
        capture_output=True, text=True, check=True, timeout=WAIT_S,
    )  # fmt: skip
    return done.stdout


def test_accountant_tops_up_a_member_and_downloads_the_statement(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    config = demo_shop.config
    _member(config, "add", "ada", "--name", "Ada Lab", "--weight", "*=1.0")
    login(browser, demo_shop, "anna")
    submit(browser, browser.find_element(By.LINK_TEXT, "Members"))
    row = browser.find_element(By.ID, "member-ada")
    assert row.find_element(By.CSS_SELECTOR, ".balance").text == "0.0000"
    assert row.find_element(By.CSS_SELECTOR, ".flags").text == ""  # nothing bought: as `status`
    today = local_date(now_ms(), load_config(config).site.tz)
    # 1.5 hours that expire in a week: low (under --low-below 2) and expiring soon.
    _topup(browser, "1.5", "60.00", today + timedelta(days=7))
    assert "Block b1: 1.5 hours for ada" in browser.find_element(By.ID, "message").text
    flags = browser.find_element(By.ID, "member-ada").find_element(By.CSS_SELECTOR, ".flags")
    assert "low: under 2" in flags.text
    assert "1.5000 expire within 14 days" in flags.text
    # 10 more hours valid a year (the form's default): no longer low, still expiring.
    _topup(browser, "10", "400.00")
    row = browser.find_element(By.ID, "member-ada")
    assert row.find_element(By.CSS_SELECTOR, ".balance").text == "11.5000"
    assert row.find_element(By.CSS_SELECTOR, ".flags").text == "1.5000 expire within 14 days"
    until = today + timedelta(days=364)
    assert f"b1: 1.5000 · {today + timedelta(days=7)}" in row.text  # earliest expiry first
    assert f"b2: 10.0000 · {until}" in row.text
    # The same balance and no warning on the command line; the top-up audited by name.
    assert "11.5000 credits" in _member(config, "show", "ada")
    assert "anna (web) member topup" in _cli(config, "status")
    screenshot(browser, "members", tmp_path)

    month = f"{today:%Y-%m}"
    for kind in ("csv", "xlsx"):
        Select(browser.find_element(By.ID, "format")).select_by_value(kind)
        browser.find_element(By.ID, "statement").click()
        got = _downloaded(tmp_path / "downloads", f".{kind}").read_bytes()
        cli_file = tmp_path / f"cli.{kind}"
        _member(config, "statement", "ada", "--month", month, "--output", str(cli_file))
        assert got == cli_file.read_bytes()  # `shopwatt member statement`'s file, byte for byte
    assert b"purchase" in (tmp_path / "cli.csv").read_bytes()


def _topup(browser: webdriver.Chrome, hours: str, price: str, until: date | None = None) -> None:
    """Fill the top-up form for ada and send it."""
    browser.find_element(By.ID, "hours").send_keys(hours)
    browser.find_element(By.ID, "price").send_keys(price)
    if until is not None:  # a date input's typing order follows the locale: set its value
        field = browser.find_element(By.ID, "valid_until")
        browser.execute_script("arguments[0].value = arguments[1]", field, until.isoformat())
    submit(browser, browser.find_element(By.ID, "topup"))


def test_an_operator_cannot_reach_the_members_page(
    demo_shop: WebServer, browser: webdriver.Chrome
) -> None:
    login(browser, demo_shop, "olga")
    assert "Members" not in browser.find_element(By.TAG_NAME, "nav").text
    browser.get(f"{demo_shop.url}/members")
    assert "not open to the role operator" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{demo_shop.url}/members/statement?member=ada&month=2026-01")
    assert "not open to the role operator" in browser.find_element(By.TAG_NAME, "main").text
