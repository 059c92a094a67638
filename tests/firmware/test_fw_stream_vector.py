"""The recorded outage/reboot/replay stream in tests/vectors/streams/ is what the sensor
actually produces, and the protocol's dedup and counter rule recover all its energy."""

import json
from pathlib import Path
from typing import Any

from fw_support import make_sensor, wave

from firmware.app import Sensor
from firmware.hal_fake import FakeHal
from firmware.rms import burst

STREAM = Path(__file__).resolve().parents[2] / "tests/vectors/streams/outage_reboot_replay.json"


def _window(hal: FakeHal, sensor: Sensor, amp: float, i: int) -> None:
    hal.pins[34].samples = wave(2000, 2017.0, amp, seed=i)
    hal.pins[34].i = 0
    burst(sensor.sums, sensor.reads, sensor.vread, 2000)
    hal.now_ms += 10000
    sensor.close_window(10000, sensor.clock.uptime())


def _deliver(sensor: Sensor, out: list[bytes]) -> None:
    while (payload := sensor.outbox.next()) is not None:
        out.append(bytes(payload))
        sensor.outbox.done()


def _record() -> list[bytes]:
    """The scenario of the vector's "about", on the fake hardware."""
    hal = FakeHal()
    hal.set_samples(34, wave(2017, 2017.0, 400.0, noise_counts=1.0))
    got: list[bytes] = []
    s = make_sensor(hal, persist_wh=20)
    s.clock.sync(1763805600000)
    s.outbox.link_up()
    for i in range(3):
        _window(hal, s, 400.0, i)
        _deliver(s, got)
    _window(hal, s, 900.0, 3)
    got.append(bytes(s.outbox.next() or b""))  # delivered, PUBACK lost with the link
    s.outbox.link_down()
    for i in range(4, 8):
        _window(hal, s, (900.0, 40.0)[i % 2], i)
    hal.power_cut()
    s = make_sensor(hal, persist_wh=20)
    for i in range(8, 10):
        _window(hal, s, 400.0, i)
    s.clock.sync(1763805700000)
    s.outbox.link_up()
    _deliver(s, got)
    for i in range(10, 12):
        _window(hal, s, 400.0, i)
        _deliver(s, got)
    return got


def test_the_stream_vector_is_what_the_firmware_sends() -> None:
    vector: dict[str, Any] = json.loads(STREAM.read_text())
    assert [m["payload"].encode() for m in vector["messages"]] == _record()


def test_dedup_and_the_counter_rule_recover_every_watt_hour() -> None:
    vector: dict[str, Any] = json.loads(STREAM.read_text())
    seen: set[tuple[int, int]] = set()
    last: dict[int, float] = {}
    total = 0.0
    exact = 0.0
    for m in vector["messages"]:
        r = json.loads(m["payload"])
        key = (r["b"], r["s"])
        assert m["expect"] == ("duplicate" if key in seen else "new")
        if key in seen:
            continue
        seen.add(key)
        p_wh = max(r["ch"][0][1], 0) * r["w"] / 3600000
        exact += p_wh
        wh = r["ch"][0][2]
        total += wh - last[r["b"]] if r["b"] in last else p_wh
        last[r["b"]] = wh
    assert {s for b, s in seen if b == 1} == set(range(8))  # nothing lost in the outage
    assert abs(total - vector["energy_wh"]) <= 0.0005  # the vector states it to the mWh
    assert abs(total - exact) < 0.002  # < 1 mWh of carried remainder per boot
