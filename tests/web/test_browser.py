"""The web page driven by a real browser: each role's day's work, and what it must refuse."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from agent.localservers import Mosquitto
from agent.serviceshop import T0, WAIT_S, FakeSensor, Gateway, Publisher, wait_for, write_config
from agent.shopday import DEMO_DAY, simulate_shop_day
from gateway.cli import replay_files
from gateway.clock import now_ms
from gateway.config import load_config
from gateway.engine.localtime import local_date
from gateway.engine.model import MachineReadings
from gateway.ledger import Ledger
from gateway.ledger.customers import Customer
from gateway.web.charts import STATE_COLOURS
from tests.web.conftest import WebServer, add_users, login, screenshot, submit

MONTH = f"{DEMO_DAY:%Y-%m}"


@pytest.fixture
def demo_shop(tmp_path: Path) -> Iterator[WebServer]:
    """The demo's shop day in a real ledger, three users, `shopwatt web` serving it."""
    shop = simulate_shop_day(7)
    config = tmp_path / "shop.toml"
    config.write_text(shop.config_toml)
    shop.readings_csv(tmp_path / "readings.csv")
    shop.jobs_csv(tmp_path / "jobs.csv")
    jobs = tmp_path / "jobs.csv"
    replay_files(load_config(config), tmp_path / "readings.csv", jobs, create_customers=True)
    add_users(config)
    server = WebServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def _cli(config: Path, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", argv[0], "--config", str(config), *argv[1:]],
        capture_output=True, text=True, check=True, timeout=WAIT_S,
    )  # fmt: skip
    return done.stdout


def _export_cli(config: Path, first: str, end: str) -> str:
    return _cli(config, "export", "--from", first, "--to", end)


def _downloaded(folder: Path, suffix: str) -> Path:
    """The file ending in `suffix` the browser downloaded, once it is complete (chromium
    writes a .crdownload first and renames it; the size must also hold still)."""
    sizes: list[int] = []

    def done() -> Path | None:
        files = [f for f in folder.iterdir() if f.name.endswith(suffix)]
        if len(files) != 1 or any(f.name.endswith(".crdownload") for f in folder.iterdir()):
            return None
        sizes.append(files[0].stat().st_size)
        return files[0] if len(sizes) > 1 and sizes[-1] == sizes[-2] > 0 else None

    return wait_for("the browser's download", done)


def test_accountant_closes_the_month_and_downloads_its_export(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    login(browser, demo_shop, "anna")
    assert browser.current_url.endswith("/month")
    assert f"Month {MONTH}" in browser.find_element(By.TAG_NAME, "h1").text
    browser.get(f"{demo_shop.url}/jobs")
    screenshot(browser, "jobs", tmp_path)
    # The heading names the days shown: the month's first and last, or the one day.
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Jobs {MONTH}-01 – {MONTH}-30"
    browser.get(f"{demo_shop.url}/jobs?day={DEMO_DAY}")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Jobs {DEMO_DAY}"
    # Each job's kWh as the export prints it (3 decimals, half up), not a second rounding.
    shown = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr"):
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        shown[cells[0]] = cells[5]
    exported = _export_rows(demo_shop.config)
    assert shown == {r["job_id"]: r["energy_kwh"] for r in exported if r["kind"] == "job"}
    browser.get(f"{demo_shop.url}/month")
    submit(browser, browser.find_element(By.ID, "close"))
    assert f"Closed {MONTH}" in browser.find_element(By.ID, "message").text
    assert "closed" in browser.find_element(By.CSS_SELECTOR, ".badge").text
    browser.find_element(By.ID, "export").click()
    got = _downloaded(tmp_path / "downloads", ".csv").read_text(encoding="utf-8")
    first, end = f"{MONTH}-01", f"{DEMO_DAY.replace(day=28) + timedelta(days=4):%Y-%m}-01"
    assert got == _export_cli(demo_shop.config, first, end)  # the CLI's export, byte for byte
    assert len(list(csv.DictReader(io.StringIO(got)))) > 5
    browser.find_element(By.ID, "bill").click()
    bill = _downloaded(tmp_path / "downloads", ".txt").read_text(encoding="utf-8")
    assert bill == _cli(demo_shop.config, "bill", "--month", MONTH)  # as `shopwatt bill` prints
    # The close is in the audit trail under the accountant's name.
    browser.get(f"{demo_shop.url}/jobs")
    assert "anna (web)" in browser.find_element(By.CSS_SELECTOR, "table.audit").text


def _cells(browser: webdriver.Chrome, table: str) -> list[list[str]]:
    """The text of each cell of a table's rows below its header."""
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{table} tr")[1:]
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_accountant_sees_the_months_states_demand_peak_and_margins(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    login(browser, demo_shop, "anna")
    # The peak card: the quarter hour, kW, charge and the jobs in it as `shopwatt bill` has them.
    bill = _cli(demo_shop.config, "bill", "--month", MONTH).splitlines()
    peak = next(line for line in bill if "peak 15-minute average at" in line).split()
    assert browser.find_element(By.ID, "peak-kw").text == f"{peak[-2]} kW"
    assert browser.find_element(By.ID, "peak-at").text == f"{peak[-4]} {peak[-3]}"
    charge = next(line for line in bill if line.startswith("  demand charge")).split()[-1]
    assert browser.find_element(By.ID, "peak-charge").text.startswith(charge)
    shares = [line.strip() for line in bill if ": " in line and "kWh in the peak" in line]
    assert len(shares) > 2
    got = [
        f"{' '.join(c for c in (machine, job, who) if c)}: {kwh} kWh in the peak {money}"
        for machine, job, who, kwh, money in _cells(browser, "peak-shares")
    ]
    assert [" ".join(s.split()) for s in got] == [" ".join(s.split()) for s in shares]
    # Cost, revenue and margin per customer: the export's --by customer lines.
    first, end = f"{MONTH}-01", f"{DEMO_DAY.replace(day=28) + timedelta(days=4):%Y-%m}-01"
    by_customer = _cli(demo_shop.config, "export", "--from", first, "--to", end, "--by", "customer")
    want = [
        [r[k] for k in ("customer", "rows", "total_cost", "demand_cost", "fixed_cost", "price",
                        "margin")]
        for r in csv.DictReader(io.StringIO(by_customer))
    ]  # fmt: skip
    assert _cells(browser, "customers") == want
    assert any(line[-1] not in ("", "0.00") for line in want)  # the demo has priced jobs
    # The timeline: per machine a strip of states over its jobs, and the peak marked.
    timeline = browser.find_element(By.CSS_SELECTOR, "#timeline svg")
    for state, colour in STATE_COLOURS.items():
        strips = timeline.find_elements(By.CSS_SELECTOR, f"rect[fill='{colour}']")
        assert strips, state
    assert timeline.find_elements(By.CSS_SELECTOR, "line.mark")
    jobs = [t.get_attribute("textContent") for t in timeline.find_elements(By.TAG_NAME, "title")]
    assert any(peak_job in " ".join(jobs) for peak_job in ("WO-261117-003",))
    screenshot(browser, "month", tmp_path)
    screenshot(browser, "month-tablet", tmp_path, width=820)  # a tablet held upright


def test_accountant_opens_a_day_of_the_month_by_quarter_hour(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    machines = {"mill": "s-mill", "lathe": "s-lathe", "laser": "s-laser"}
    config = write_config(tmp_path, None, sensors=machines)
    ledger = Ledger(load_config(config))
    rng = np.random.default_rng(3)
    for day in range(6):  # a working week: idle from 09:00, jobs of 30-90 minutes
        for k, machine in enumerate(machines):
            t = T0 + day * 86_400_000 + np.arange(8 * 360, dtype=np.int64) * 10_000
            watts = np.full(len(t), 90.0)
            for start in rng.integers(0, len(t) - 540, 3):
                watts[start : start + rng.integers(180, 540)] = 900.0 + 300 * k
            ledger.ingest({machine: MachineReadings(t, watts, np.full(len(t), np.nan))}, "test")
    add_users(config)
    server = WebServer(config).start()
    try:
        login(browser, server, "anna")
        strips = browser.find_elements(By.CSS_SELECTOR, "#timeline svg a")
        assert len(strips) == 6 * len(machines)  # each machine's day opens the day
        screenshot(browser, "month-days", tmp_path)
        submit(browser, strips[1])  # the mill's second day (a lane is a machine's days)
        assert "2026-11-04" in browser.find_element(By.CSS_SELECTOR, "#timeline h2").text
        timeline = browser.find_element(By.CSS_SELECTOR, "#timeline svg")
        assert not timeline.find_elements(By.TAG_NAME, "a")  # quarter hours, no more days
        hovers = [
            t.get_attribute("textContent") for t in timeline.find_elements(By.TAG_NAME, "title")
        ]
        assert any(h.endswith("h running") for h in hovers)
        assert any(h.startswith("mill-20261104") for h in hovers)  # the day's jobs only
        assert not any(h.startswith("mill-20261103") for h in hovers)
        screenshot(browser, "month-day", tmp_path)
        submit(browser, browser.find_element(By.ID, "whole-month"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline svg a")) == len(strips)
    finally:
        server.stop()


def _export_rows(config: Path) -> list[dict[str, str]]:
    first, end = f"{MONTH}-01", f"{DEMO_DAY.replace(day=28) + timedelta(days=4):%Y-%m}-01"
    return list(csv.DictReader(io.StringIO(_export_cli(config, first, end))))


def _open_first_unassigned(browser: webdriver.Chrome, server: WebServer) -> tuple[str, str]:
    """From the unassigned queue to a job's page: its machine and id."""
    browser.get(f"{server.url}/jobs")
    submit(browser, browser.find_element(By.LINK_TEXT, "Unassigned queue"))
    row = browser.find_element(By.CSS_SELECTOR, "#jobs tr.unassigned")
    machine, job = (row.find_elements(By.TAG_NAME, "td")[i].text for i in (1, 0))
    submit(browser, row.find_element(By.CSS_SELECTOR, "a.assign"))
    assert f"Job {job}" in browser.find_element(By.TAG_NAME, "h1").text
    return machine, job


def test_accountant_assigns_an_unassigned_job_and_the_export_shows_it(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    customer = Ledger(load_config(demo_shop.config)).customer_list()[0]
    login(browser, demo_shop, "anna")
    machine, job = _open_first_unassigned(browser, demo_shop)
    screenshot(browser, "job", tmp_path)
    form = browser.find_element(By.ID, "assign")
    form.find_element(By.NAME, "customer").send_keys(f"{customer.id}x")  # a typo: refused
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    refused = browser.find_element(By.ID, "message").text  # on the same job's page
    assert refused.startswith(f"Not assigned: --customer: customer '{customer.id}x' is not known")
    assert f"Job {job}" in browser.find_element(By.TAG_NAME, "h1").text
    form = browser.find_element(By.ID, "assign")
    form.find_element(By.NAME, "customer").clear()
    form.find_element(By.NAME, "customer").send_keys(customer.name)  # a display name will do
    form.find_element(By.NAME, "order").send_keys("PO-7")
    form.find_element(By.NAME, "parts").send_keys("40")
    form.find_element(By.NAME, "scrap").send_keys("2")
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    assert (
        f"Assigned {job} on {machine} to {customer.id}"
        in browser.find_element(By.ID, "message").text
    )
    row = next(r for r in _export_rows(demo_shop.config) if r["job_id"] == job)
    assert (row["customer"], row["order"], row["parts"], row["scrap"]) == (
        customer.id, "PO-7", "40", "2"
    )  # fmt: skip
    audit = browser.find_element(By.CSS_SELECTOR, "table.audit").text
    assert "anna (web) job assign" in audit


def test_an_assign_of_a_job_gone_meanwhile_says_why_on_the_jobs_page(
    demo_shop: WebServer, browser: webdriver.Chrome
) -> None:
    customer = Ledger(load_config(demo_shop.config)).customer_list()[0]
    login(browser, demo_shop, "anna")
    _open_first_unassigned(browser, demo_shop)
    form = browser.find_element(By.ID, "assign")
    # Split or recomputed away while the page was open: the form names a job that is gone.
    browser.execute_script("arguments[0].value = 'gone-1'", form.find_element(By.NAME, "job"))
    form.find_element(By.NAME, "customer").clear()
    form.find_element(By.NAME, "customer").send_keys(customer.id)
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    message = browser.find_element(By.ID, "message").text
    assert message.startswith("Not assigned: ") and "'gone-1'" in message
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Jobs ")


def test_accountant_splits_a_job_into_two_rows(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    login(browser, demo_shop, "anna")
    machine, job = _open_first_unassigned(browser, demo_shop)
    before = [r for r in _export_rows(demo_shop.config) if r["machine"] == machine]
    form = browser.find_element(By.ID, "split")  # at the job's middle, as the form offers
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    message = browser.find_element(By.ID, "message").text
    assert message.startswith(f"Split {job}: the part from ")
    second = message.rsplit(" is ", 1)[1].rstrip(".")
    after = [r for r in _export_rows(demo_shop.config) if r["machine"] == machine]
    assert len(after) == len(before) + 1
    assert {job, second} <= {r["job_id"] for r in after}
    assert "anna (web) job split" in browser.find_element(By.CSS_SELECTOR, "table.audit").text


def test_operator_cannot_open_the_month_page(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    login(browser, demo_shop, "olga")
    assert browser.current_url.endswith("/floor")
    assert "Month" not in browser.find_element(By.TAG_NAME, "nav").text
    screenshot(browser, "floor", tmp_path)
    browser.get(f"{demo_shop.url}/floor/no-such-machine/start")
    assert "Not found: /floor/no-such-machine/start" in browser.find_element(By.ID, "message").text
    browser.get(f"{demo_shop.url}/month")
    assert "not open to the role operator" in browser.find_element(By.ID, "refused").text
    browser.get(f"{demo_shop.url}/month/export.csv?period={MONTH}")
    assert "not open to the role operator" in browser.find_element(By.ID, "refused").text


def test_a_form_without_its_csrf_token_is_refused(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    login(browser, demo_shop, "owen")
    browser.get(f"{demo_shop.url}/health")
    screenshot(browser, "health", tmp_path)
    browser.get(f"{demo_shop.url}/users")
    screenshot(browser, "users", tmp_path)
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/users']")
    form.find_element(By.NAME, "name").send_keys("mallory")
    form.find_element(By.NAME, "password").send_keys("mallory-pass-1")
    browser.execute_script("arguments[0].remove()", form.find_element(By.NAME, "csrf"))
    submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    assert "no valid CSRF token" in browser.find_element(By.ID, "refused").text
    browser.get(f"{demo_shop.url}/users")
    assert "mallory" not in browser.find_element(By.TAG_NAME, "table").text


def test_five_wrong_passwords_slow_the_next_login_down(
    demo_shop: WebServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    for _ in range(5):
        login(browser, demo_shop, "anna", "not-the-password")
        assert "Wrong user name or password" in browser.find_element(By.ID, "error").text
    login(browser, demo_shop, "anna")  # the right password, but too soon
    assert "Too many failed logins: try again in" in browser.find_element(By.ID, "error").text
    screenshot(browser, "login", tmp_path)
    browser.get(f"{demo_shop.url}/month")
    assert browser.current_url.endswith("/login")


def test_operator_starts_and_stops_a_job_and_it_is_in_the_export(
    mosquitto: Mosquitto, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, sensors={"mill": "s-mill"})
    add_users(config)
    Ledger(load_config(config)).customer_add(Customer("ACME", "ACME GmbH"))
    server = WebServer(config)
    with Gateway(config):
        publisher = Publisher(mosquitto)
        server.start()
        try:
            _start_and_stop(server, browser, publisher, tmp_path)
        finally:
            server.stop()
            publisher.close()
    day = local_date(now_ms(), load_config(config).site.tz)
    export = _export_cli(config, f"{day - timedelta(days=1)}", f"{day + timedelta(days=2)}")
    job = next(r for r in csv.DictReader(io.StringIO(export)) if r["job_id"] == "W-1")
    # The customer by its display name, the order and the stop's parts and scrap: as the CLI.
    got = (job["machine"], job["customer"], job["order"], job["parts"], job["scrap"])
    assert got == ("mill", "ACME", "PO-7", "12", "1")
    # Who pressed the buttons is in the audit trail.
    pressed = [(e.who, e.action) for e in Ledger(load_config(config)).status(50).audit]
    assert {("olga (web)", "job start"), ("olga (web)", "job stop")} <= set(pressed)


def _start_and_stop(
    server: WebServer, browser: webdriver.Chrome, publisher: Publisher, tmp_path: Path
) -> None:
    sensor = FakeSensor("mill", "s-mill", t_ms=now_ms() - 300_000)
    publisher.send(sensor.readings([909] * 30))  # the mill runs, up to now
    login(browser, server, "olga")
    screenshot(browser, "floor-live", tmp_path)
    _open_form(browser, "start")
    form = browser.find_element(By.ID, "start")
    # The known customers are offered as she types (a datalist: id, and the name beside it).
    offered = browser.find_elements(By.CSS_SELECTOR, "#customers option")
    assert [(o.get_attribute("value"), o.get_attribute("textContent")) for o in offered] == [
        ("ACME", "ACME GmbH")
    ]
    typed = {"job": "W-1", "customer": "ACMEE", "order": "PO-7"}  # a typo: refused, not sent
    for name, text in typed.items():
        form.find_element(By.NAME, name).send_keys(text)
    submit(browser, form.find_element(By.CSS_SELECTOR, "button.go"))
    refused = browser.find_element(By.ID, "message").text
    assert refused.startswith("Not sent: ") and "(closest: ACME)" in refused
    form = browser.find_element(By.ID, "start")  # the same form, with what she typed
    assert {n: form.find_element(By.NAME, n).get_attribute("value") for n in typed} == typed
    form.find_element(By.NAME, "customer").clear()
    form.find_element(By.NAME, "customer").send_keys("ACME GmbH")
    screenshot(browser, "floor-start", tmp_path)
    submit(browser, form.find_element(By.CSS_SELECTOR, "button.go"))
    assert browser.current_url.endswith("/floor/job")  # back on the floor, with the message
    sent = browser.find_element(By.ID, "message").text
    assert "Job W-1 start sent" in sent and "its tile follows once the gateway has it" in sent
    publisher.send(sensor.readings([909] * 6))

    def running() -> bool:
        browser.get(f"{server.url}/floor")
        return "Stop W-1" in browser.find_element(By.ID, "machine-mill").text

    wait_for("the running job on the floor page", running)
    screenshot(browser, "floor-running", tmp_path)
    _open_form(browser, "stop")
    form = browser.find_element(By.ID, "stop")
    assert "Job W-1 for ACME" in form.text
    form.find_element(By.NAME, "parts").send_keys("12")
    form.find_element(By.NAME, "scrap").send_keys("1")
    screenshot(browser, "floor-stop", tmp_path)
    submit(browser, form.find_element(By.CSS_SELECTOR, "button.stop"))
    assert "Job W-1 stop sent" in browser.find_element(By.ID, "message").text
    publisher.send(sensor.readings([909] * 6))

    def stopped() -> bool:
        browser.get(f"{server.url}/floor")
        return "Stop W-1" not in browser.find_element(By.ID, "machine-mill").text

    wait_for("the stopped job", stopped)


def _open_form(browser: webdriver.Chrome, event: str) -> None:
    """From the mill's tile to its start or stop page, which never reloads under the typing
    (the floor itself refreshes every 15 s)."""
    tile = browser.find_element(By.ID, "machine-mill")
    submit(browser, tile.find_element(By.CSS_SELECTOR, f"a.{'go' if event == 'start' else 'stop'}"))
    assert browser.current_url.endswith(f"/floor/mill/{event}")
    assert not browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv='refresh']")
