"""No `shopwatt run` outlives the benchmark, test or demo that started it (issue 10, item 14).

Every process below carries a tag in its environment, which its children inherit: an
orphan, re-parented to init, is still found by its tag and by nothing else, so the
gateways of tests running in parallel are never mistaken for one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import find_binary

ROOT = Path(__file__).resolve().parent.parent
TAG = "SHOPWATT_ORPHAN_TAG"

# Starts a broker and a gateway as tests, benchmarks and `make stack-demo` do (one class),
# prints the gateway's pid, then waits to be killed.
_STARTER = """
import sys, time
from pathlib import Path
from agent.localservers import Mosquitto
from agent.serviceshop import Gateway, write_config
folder = Path(sys.argv[1])
broker = Mosquitto(root=folder).start()
path = write_config(folder, broker, sensors={"mill": "s1"})
gateway = Gateway(path).start().ready()
print(gateway.proc.pid, flush=True)
time.sleep(120)
"""


def _tagged(tag: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries the tag."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        if f"{TAG}={tag}".encode() in environ and state != "Z":
            found.append((int(proc.name), cmdline))
    return found


@pytest.fixture
def tag() -> Iterator[str]:
    """A fresh tag; whatever still carries it at the end is killed (a failed test too)."""
    value = uuid.uuid4().hex
    yield value
    for pid, _ in _tagged(value):
        os.kill(pid, signal.SIGKILL)


def _gateways(tag: str, within_s: float = 20.0) -> list[str]:
    """`shopwatt run` processes with the tag, once the dying ones had time to go."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [cmd for _, cmd in _tagged(tag) if "gateway run" in cmd]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_a_killed_starter_takes_its_gateway_and_broker_with_it(tmp_path: Path, tag: str) -> None:
    find_binary("mosquitto")
    child = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, TAG: tag, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    gateway_pid = int(child.stdout.readline())
    assert any(pid == gateway_pid for pid, _ in _tagged(tag))
    os.kill(child.pid, signal.SIGKILL)  # no finally, no atexit: only the kernel can help
    child.wait()
    assert _gateways(tag) == []
    assert [cmd for _, cmd in _tagged(tag) if "mosquitto" in cmd] == []


def test_the_ingest_benchmark_leaves_no_gateway_running(tag: str) -> None:
    for server in ("mosquitto", "influxd"):
        find_binary(server)
    tiny = ["--readings", "40", "--sensors", "2", "--rounds", "1"]
    tiny += ["--rss-sensors", "2", "--rss-windows", "2"]
    done = subprocess.run(
        [sys.executable, "bench/ingest.py", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, TAG: tag},
    )
    assert done.returncode == 0, done.stderr
    assert _gateways(tag, within_s=0) == []
