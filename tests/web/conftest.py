"""The web page as a person uses it: `shopwatt web` as its own process on a free loopback
port, a real ledger, and Debian's chromium driven by Selenium (no browser download).

Screenshots go to $SHOPWATT_SCREENSHOTS when set (docs/web/ holds the committed ones:
`SHOPWATT_SCREENSHOTS=docs/web pytest tests/web`), else to the test's temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

from agent.localservers import LOOPBACK, free_port, port_open, spawn
from agent.serviceshop import ROOT, WAIT_S
from gateway.provision.tls import CertPaths

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORDS = {"olga": "operator-pass-1", "anna": "accountant-pass-1", "owen": "owner-pass-12"}
ROLES = {"olga": "operator", "anna": "accountant", "owen": "owner"}


def add_users(config: Path) -> None:
    """One user of each role, through `shopwatt web user add` with the password on stdin."""
    for name, password in PASSWORDS.items():
        subprocess.run(
            [sys.executable, "-m", "gateway", "web", "user", "add", name, "--role", ROLES[name],
             "--config", str(config)],
            input=f"{password}\n", text=True, check=True, capture_output=True, timeout=WAIT_S,
        )  # fmt: skip


@dataclass
class WebServer:
    """`shopwatt web` on a free loopback port, stopped by PID."""

    config: Path
    tls: CertPaths | None = None  # serve HTTPS with this certificate and key
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The page's address."""
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def start(self) -> WebServer:
        """Start it and wait until it listens."""
        log_path = self.config.parent / f"web-{self.port}.log"
        argv = [sys.executable, "-m", "gateway", "web", "--config", str(self.config)]
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        with log_path.open("ab") as log:
            self.proc = spawn([*argv, "--port", str(self.port)], log, ROOT)
        deadline = time.monotonic() + WAIT_S
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"shopwatt web did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Terminate and wait."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless chromium with a fresh profile; downloads land in tmp_path/downloads."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("needs Debian's chromium and chromium-driver: run .ci/system-deps as root")
    options = Options()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="shopwatt-chromium-", dir=tmp_path)
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()  # ends chromium and chromedriver


def login(driver: webdriver.Chrome, server: WebServer, name: str, password: str = "") -> None:
    """Fill the login form as a person would."""
    driver.get(f"{server.url}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password or PASSWORDS[name])
    submit(driver, driver.find_element(By.ID, "login"))


def submit(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click a button or link and wait until the browser shows the page it leads to."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, WAIT_S).until(staleness_of(old))


def screenshot(driver: webdriver.Chrome, name: str, tmp_path: Path, width: int = 1280) -> Path:
    """A full-height screenshot of the current page, `width` pixels wide (a laptop)."""
    folder = Path(os.environ.get("SHOPWATT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(900, int(height)))
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path
