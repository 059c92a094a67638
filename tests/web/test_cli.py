"""`shopwatt web` start-up errors: one line, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from agent.localservers import LOOPBACK
from agent.serviceshop import write_config


def test_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, sensors={"mill": "s-mill"})
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "web", "--config", str(config), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"shopwatt: error: --host 127.0.0.1 --port {port}: Address already in use\n"
    )


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, sensors={"mill": "s-mill"})
    cert = tmp_path / "server.crt"
    cert.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "web", "--config", str(config), "--tls-cert", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert done.stderr.endswith("web: error: --tls-cert and --tls-key go together (see --help)\n")
