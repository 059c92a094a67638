"""The sensor's asyncio tasks on the fake hardware: meter polling, watchdog, time sync.

No broker here (Wi-Fi is down), so every reading lands in the flash ring, where the
tests read it back. CPython only: the WebAssembly MicroPython has no asyncio.run.
"""

import asyncio
import json
import time
from pathlib import Path

from fw_support import make_sensor, wave

from firmware.app import Sensor
from firmware.hal_fake import FakeHal, MeterPort

# PZEM-004T registers: 229.6 V, 8.25 A, 1855.1 W, 7203110 Wh.
PZEM = {0: 2296, 1: 8250, 2: 0, 3: 18551, 4: 0, 5: 0xE926, 6: 0x6D, 7: 500, 8: 98, 9: 0}
WAIT_S = 30.0


def _hal(tmp_path: Path) -> FakeHal:
    hal = FakeHal(folder=str(tmp_path), clock_ms=lambda: int(time.monotonic() * 1000))
    hal.wifi = False
    hal.set_samples(34, wave(2017, 2017.0, 400.0, noise_counts=1.0))
    return hal


def _readings(sensor: Sensor) -> list[dict]:  # type: ignore[type-arg]
    out = []
    ring = sensor.ring
    for idx in range(ring.head, ring.tail):
        saved = ring.head
        ring.head = idx
        payload = ring.peek()
        ring.head = saved
        assert payload is not None
        out.append(json.loads(payload))
    return out


async def _run_until(sensor: Sensor, cond: object, what: str) -> None:
    task = asyncio.create_task(sensor.run())
    deadline = time.monotonic() + WAIT_S
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _meter_sensor(tmp_path: Path) -> tuple[MeterPort, Sensor]:
    hal = _hal(tmp_path)
    hal.meter = MeterPort(1, PZEM)
    sensor = make_sensor(
        hal, window_ms=1000, burst=50, meter={"type": "pzem004t", "poll_ms": 200, "timeout_ms": 50}
    )
    asyncio.run(_run_until(sensor, lambda: sensor.seq >= 2, "two windows"))
    return hal.meter, sensor


def test_meter_channel_follows_the_meter_and_is_null_when_it_is_silent(tmp_path: Path) -> None:
    meter, sensor = _meter_sensor(tmp_path)
    meter.mode = "silent"
    asyncio.run(_run_until(sensor, lambda: sensor.seq >= 4, "two silent windows"))
    meter.mode = "bad_crc"
    asyncio.run(_run_until(sensor, lambda: sensor.seq >= 6, "two windows of CRC errors"))
    rs = _readings(sensor)
    assert rs[1]["ch"][1] == [8.25, 1855.1, 7203110.0] and rs[1]["e"] == 0
    assert rs[3]["ch"][1] is None and rs[3]["e"] >= 2  # no stale repeat of the old value
    assert rs[5]["ch"][1] is None and rs[5]["e"] >= 2
    assert all(r["ch"][0] is not None for r in rs)  # the CT channel never stops


def test_meter_voltage_is_reported_without_a_voltage_channel(tmp_path: Path) -> None:
    _meter, sensor = _meter_sensor(tmp_path)
    assert _readings(sensor)[1]["vr"] == 229.6


def test_watchdog_is_fed_only_while_every_task_makes_progress(tmp_path: Path) -> None:
    hal = _hal(tmp_path)
    sensor = make_sensor(hal, window_ms=1000, burst=50, wdt_ms=30000)
    asyncio.run(_run_until(sensor, lambda: hal.wdt_feeds >= 3, "watchdog feeds"))
    assert hal.wdt_timeout_ms == 30000

    async def stalled() -> None:
        # A network task stuck for minutes (beat far in the past): no more feeding.
        sup = asyncio.create_task(sensor.supervise())
        await asyncio.sleep(0.3)
        sensor.beat_net = sensor.clock.uptime() - 10 * 60 * 1000
        sensor.beat_sampler = sensor.clock.uptime()
        fed = hal.wdt_feeds
        await asyncio.sleep(1.0)
        sup.cancel()
        await asyncio.gather(sup, return_exceptions=True)
        assert hal.wdt_feeds == fed

    asyncio.run(stalled())


def test_readings_carry_null_time_until_the_clock_is_synced(tmp_path: Path) -> None:
    hal = _hal(tmp_path)
    hal.wifi = True  # Wi-Fi up, but no broker at this port and no NTP answer
    hal.utc_offset_ms = None
    sensor = make_sensor(hal, window_ms=1000, burst=50, mqtt={"host": "127.0.0.1", "port": 9})
    asyncio.run(_run_until(sensor, lambda: sensor.seq >= 2, "two windows"))
    hal.utc_offset_ms = 1763805600000
    asyncio.run(_run_until(sensor, lambda: sensor.clock.syncs >= 1, "a time sync"))
    asyncio.run(_run_until(sensor, lambda: sensor.seq >= 5, "three more windows"))
    rs = _readings(sensor)
    assert rs[0]["t"] is None and rs[1]["t"] is None
    synced = [r for r in rs if r["t"] is not None]
    assert synced and all(r["t"] >= 1763805600000 for r in synced)
    assert sensor.net_failures >= 1  # nobody listens on port 9: counted, retried
