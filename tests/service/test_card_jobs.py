"""A job started and stopped with a card at the sensor's reader reaches the ledger with the
card's UID: firmware encoder -> mosquitto -> `shopwatt run` -> ledger."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

from agent.serviceshop import (
    FakeSensor,
    Gateway,
    Publisher,
    config,
    ledger_readings,
    wait_for,
    write_config,
)
from firmware import encode
from gateway.config import ShopConfig
from gateway.ledger import Ledger
from tests.ledger.shop import drop_billing_step
from tests.servers import Mosquitto

CARD = "04A1B2C3D4E5F6"  # a 7-byte UID (NTAG, DESFire)


def _live_jobs(cfg: ShopConfig) -> list[tuple[str, str, int | None, str]]:
    """(job, customer, stop, card) of every job the service keeps in the ledger."""
    return [(j[1], j[4], j[3], j[7]) for j in Ledger(cfg).live_state().jobs]


def test_a_card_tap_job_reaches_the_ledger_with_its_card(tmp_path: Path, broker: Mosquitto) -> None:
    path = write_config(tmp_path, broker, sensors={"mill": "s1"})
    cfg = config(path)
    sensor = FakeSensor("mill", "s1")
    start_t, stop_t = sensor.t_ms + 30_000, sensor.t_ms + 120_000
    job = f"s1-{start_t}"
    topic = "shopwatt/v1/test-shop/mill/job"
    # What the firmware sends for a tap and a second tap of the same card (jobs.JobSwitch).
    start = encode.job_event("start", job, CARD, start_t, "s1")
    stop = encode.job_event("stop", job, CARD, stop_t, "s1")
    publisher = Publisher(broker)
    try:
        with Gateway(path) as gw:
            publisher.send([(topic, start), *sensor.readings([900] * 10)])
            wait_for("the readings", lambda: ledger_readings(cfg).get("mill") == 10, gw)
            publisher.send([(topic, stop), *sensor.readings([900] * 10)])
            wait_for("the job's stop", lambda: [r for r in _live_jobs(cfg) if r[2]], gw)
            assert gw.stop() == 0
    finally:
        publisher.close()
    assert _live_jobs(cfg) == [(job, "", stop_t, CARD)]
    rows = Ledger(cfg).select(date(2026, 11, 3), date(2026, 11, 4)).rows
    jobs = {r.job_id: r for r in rows if r.kind == "job"}
    assert (jobs[job].start_ms, jobs[job].end_ms) == (start_t, stop_t)


def test_a_ledger_from_before_the_card_reader_keeps_its_jobs_without_a_card(
    tmp_path: Path,
) -> None:
    cfg = config(write_config(tmp_path, None, sensors={"mill": "s1"}))
    Ledger(cfg).ingest({}, "test")  # the ledger exists, empty
    with closing(sqlite3.connect(Ledger(cfg).path)) as conn, conn:
        # A ledger of schema version 6 (no card table), with a job in it.
        conn.execute("DROP TABLE live_job_cards")
        drop_billing_step(conn)  # a later step that cannot run twice
        conn.execute("INSERT INTO live_jobs VALUES ('mill', 'J-1', 1, 2, 'ACME', 3, 'b')")
        conn.execute("PRAGMA user_version = 6")
    assert Ledger(cfg).live_state().jobs == [("mill", "J-1", 1, 2, "ACME", 3, "b", "")]
