"""`shopwatt run` never loads what only other commands need (memory on a Raspberry Pi).

The service runs as its own process with Python's import log (-X importtime, which also
records imports made long after start-up), takes readings into the ledger and InfluxDB,
and stops; then every module it ever imported is known.
"""

from __future__ import annotations

import pytest

from agent.serviceshop import (
    BROKER_CONFIG,
    FakeSensor,
    Gateway,
    config,
    ledger_readings,
    mosquitto_pub,
    wait_for,
    write_config,
)
from tests.servers import Influxd, ServerPool

# What the service must never pay for: export (openpyxl), replay's progress bar (tqdm) and
# fast parser (pyarrow), provisioning (cryptography), a client library for InfluxDB, the
# virtual shop, the web page (starlette, uvicorn, jinja2, argon2); Modbus (pymodbus) in a
# shop without meters.
NEVER = ["openpyxl", "tqdm", "pyarrow", "cryptography", "influxdb_client", "agent", "firmware"]
NEVER += ["starlette", "uvicorn", "jinja2", "argon2", "pymodbus"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> set[str]:
    """Top-level names of every module a `shopwatt run` imported from start to stop."""
    pool = ServerPool()
    try:
        broker = pool.mosquitto(BROKER_CONFIG)
        db = influxd.create_database("lean_run")
        path = write_config(tmp_path_factory.mktemp("lean"), broker, influxd, db, {"mill": "s1"})
        mill = FakeSensor("mill", "s1")
        watts = [45] * 6 + [1800] * 31 + [45] * 20  # a job: states, costs, every output
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYTHONPROFILEIMPORTTIME", "1")
            with Gateway(path) as gw:
                mosquitto_pub(broker, mill.topic, [mill.reading(w) for w in watts])
                wait_for("the readings", lambda: ledger_readings(config(path)) == {"mill": 57}, gw)
                q = 'SELECT count("watts") FROM "power"'
                wait_for("the points", lambda: influxd.rows(q, db), gw)
                assert gw.stop() == 0
        log = gw.log()
        influxd.drop_database(db)
    finally:
        pool.close()
    names = [line.rsplit("|", 1)[1].strip() for line in log.splitlines() if "import time:" in line]
    return {name.partition(".")[0] for name in names}


@pytest.mark.parametrize("module", NEVER)
def test_shopwatt_run_never_imports(imported: set[str], module: str) -> None:
    assert "gateway" in imported  # the log is there
    assert module not in imported
