"""The live service does not load the v2 InfluxDB client it only needs for api = "v2"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# influxdb-client and its urllib3/dateutil stack are ~13 MB of RSS on a Pi that writes
# through the default v1 path; gateway/outputs/influxdb.py imports it in V2Writer only.
LAZY = ("influxdb_client",)


def test_service_and_cli_import_without_the_v2_client() -> None:
    probe = (
        "import sys, gateway.service, gateway.cli; "
        f"print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []
