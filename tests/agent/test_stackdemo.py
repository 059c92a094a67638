"""`make stack-demo`: the whole stack comes up, prints its results, and nothing outlives it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import find_binary, port_open

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]


def _demo(out: Path, *args: str) -> subprocess.Popen[str]:
    for server in ("mosquitto", "influxd"):
        find_binary(server)  # fails with the command that installs it
    return subprocess.Popen(
        [sys.executable, "-m", "agent.stackdemo", "--output", str(out), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ports(progress: str) -> list[int]:
    found = re.search(r"mosquitto :(\d+), influxd :(\d+)", progress)
    assert found, progress
    return [int(p) for p in found.groups()]


def test_two_hours_of_the_demo_day_end_in_costs_series_and_dashboards(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--start", "05:00", "--duration", "2h", "--speed", "1200")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "WO-261117-001" in out  # the mill's first booked job, 05:57-06:47
    assert re.search(r"power\s+7 series\s+5040 points", out)  # 7 sensors x 720 windows
    assert "<grafana>/d/shopwatt-overview?from=" in out
    assert not any(port_open(p) for p in _ports(err))
    assert "shopwatt run: stopped" in (tmp_path / "gateway.log").read_text()


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--duration", "24h", "--speed", "60")
    assert proc.stderr is not None
    progress = ""
    while "simulating" not in progress:
        line = proc.stderr.readline()
        assert line, progress  # the demo died before it got going
        progress += line
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted; everything it started is stopped" in err
    assert not any(port_open(p) for p in _ports(progress))
    assert "shopwatt run: stopped" in (tmp_path / "gateway.log").read_text()
