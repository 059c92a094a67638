"""`shopwatt run` never loads what only other commands need (memory on a Raspberry Pi).

The service runs as its own process, in the environment of examples/shopwatt.service, with
Python's import log (-X importtime, which also records imports made long after start-up),
takes readings into the ledger and InfluxDB, and stops; then every module it ever imported
is known.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.serviceshop import (
    BROKER_CONFIG,
    FakeSensor,
    Gateway,
    config,
    ledger_readings,
    mosquitto_pub,
    unit_env,
    wait_for,
    write_config,
)
from gateway.service import SQLITE_HEAP_BYTES, tune_process
from tests.servers import Influxd, ServerPool

# What the service must never pay for: export (openpyxl), replay's progress bar (tqdm) and
# fast parser (pyarrow), provisioning (cryptography), a client library for InfluxDB, the
# virtual shop, the web page (starlette, uvicorn, jinja2, argon2); Modbus (pymodbus) in a
# shop without meters.
NEVER = ["openpyxl", "tqdm", "pyarrow", "cryptography", "influxdb_client", "agent", "firmware"]
NEVER += ["starlette", "uvicorn", "jinja2", "argon2", "pymodbus"]


@dataclass(frozen=True)
class Run:
    imported: set[str]  # top-level names of every module imported from start to stop
    cache: Path  # the unit's CacheDirectory=


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> Run:
    """One `shopwatt run` as systemd runs it, from start to a clean stop."""
    cache = tmp_path_factory.mktemp("cache")
    pool = ServerPool()
    try:
        broker = pool.mosquitto(BROKER_CONFIG)
        db = influxd.create_database("lean_run")
        path = write_config(tmp_path_factory.mktemp("lean"), broker, influxd, db, {"mill": "s1"})
        mill = FakeSensor("mill", "s1")
        watts = [45] * 6 + [1800] * 31 + [45] * 20  # a job: states, costs, every output
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYTHONPROFILEIMPORTTIME", "1")
            for key, value in unit_env(cache).items():
                mp.setenv(key, value)
            mp.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # systemd sets no such thing
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
    return Run({name.partition(".")[0] for name in names}, cache)


@pytest.mark.parametrize("module", NEVER)
def test_shopwatt_run_never_imports(run: Run, module: str) -> None:
    assert "gateway" in run.imported  # the log is there
    assert module not in run.imported


def test_shopwatt_run_keeps_its_compiled_modules_in_the_units_cache(run: Run) -> None:
    # Without docstrings and asserts (-OO, 4 MB less memory), compiled where the service
    # may write: a Pi's venv is read-only to it, and compiling at every start costs memory.
    assert list(run.cache.rglob("gateway/service.cpython-*.opt-2.pyc"))


def test_the_service_caps_what_sqlite_keeps_in_memory() -> None:
    # Every connection's page cache counts (ledger, outbox, each short reader): late in the
    # day they held 2 MB each, and what they freed stayed in the heap.
    switch = sys.getswitchinterval()
    with closing(sqlite3.connect(":memory:")) as conn:
        unlimited = conn.execute("PRAGMA soft_heap_limit").fetchone()[0]
        try:
            tune_process()
            assert conn.execute("PRAGMA soft_heap_limit").fetchone()[0] == SQLITE_HEAP_BYTES
        finally:
            conn.execute(f"PRAGMA soft_heap_limit = {unlimited}")
            sys.setswitchinterval(switch)
