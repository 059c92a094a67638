"""The firmware's MQTT client and the whole sensor against a real mosquitto.

CPython runs the firmware's asyncio code unchanged (MicroPython's asyncio streams have the
same API); the hardware is the fake layer with the host's monotonic clock.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from fw_support import make_sensor, wave
from jsonschema import Draft202012Validator

from firmware.app import Sensor
from firmware.hal_fake import FakeHal, FakeReset
from firmware.jobs import HOLDOFF_MS
from firmware.mqtt import Client
from firmware.mqtt_codec import MqttError
from tests.servers import Mosquitto

BASE = "shopwatt/v1/demo/cnc-01/"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _valid(kind: str, payload: bytes) -> bool:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    return Draft202012Validator(schema).is_valid(json.loads(payload))


WAIT_S = 30.0  # upper bound for anything below to happen; never a timing assertion


class Listener:
    """A paho subscriber with a persistent session: nothing published while it is away
    (broker restarts included) is lost to it."""

    def __init__(self, port: int, topic: str, name: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._topic = topic
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False
        )
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # Until the broker has the subscription, what is published is not for us.
        assert self.subscribed.wait(WAIT_S), f"no SUBACK for {topic}"

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, suffix: str) -> list[bytes]:
        """Payloads received on topics ending with suffix, in arrival order."""
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        """Stop the network thread."""
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def listen(mosquitto: Mosquitto) -> Any:
    """listen(topic) -> a Listener on the test's broker; closed after the test."""
    made: list[Listener] = []

    def _make(topic: str) -> Listener:
        made.append(Listener(mosquitto.port, topic, f"listener-{len(made)}"))
        return made[-1]

    yield _make
    for listener in made:
        listener.close()


async def until(cond: Callable[[], bool], what: str) -> None:
    """Wait (without blocking the loop) until cond() holds; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


def _sensor(tmp_path: Path, port: int) -> tuple[FakeHal, Sensor]:
    hal = FakeHal(folder=str(tmp_path), clock_ms=lambda: int(time.monotonic() * 1000))
    hal.set_samples(34, wave(2017, 2017.0, 400.0, noise_counts=1.0))
    sensor = make_sensor(
        hal, window_ms=1000, burst=50, mqtt={"host": "127.0.0.1", "port": port, "keepalive_s": 10}
    )
    return hal, sensor


def test_client_qos1_subscribe_retained_status_and_last_will(
    mosquitto: Mosquitto, listen: Any
) -> None:
    status = listen(BASE + "s1/status")
    readings = listen(BASE + "s1/reading")
    got: list[tuple[str, bytes]] = []

    async def scenario() -> None:
        c = Client(
            "127.0.0.1",
            mosquitto.port,
            "shopwatt-s1",
            10,
            (BASE + "s1/status", b'{"v":1,"state":"offline","boot":1}', 1, True),
            on_message=lambda t, p: got.append((t, p)),
        )
        assert await c.connect() is False  # a new session
        await c.subscribe(BASE + "s1/cmd")
        await c.publish(BASE + "s1/reading", b"r1")  # returns once the broker has it
        await c.publish(BASE + "s1/status", b'{"v":1,"state":"online","boot":1}', retain=True)
        await until(lambda: len(readings.payloads("reading")) == 1, "the reading")
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="gw")
        pub.connect("127.0.0.1", mosquitto.port)
        pub.publish(BASE + "s1/cmd", b'{"v":1,"cmd":"status"}', qos=1).wait_for_publish(5)
        pub.disconnect()
        await until(lambda: bool(got), "the command")
        await c.close()  # vanish without DISCONNECT: the broker must publish the will

    asyncio.run(scenario())
    assert got == [(BASE + "s1/cmd", b'{"v":1,"cmd":"status"}')]
    assert readings.payloads("reading") == [b"r1"]
    deadline = time.monotonic() + WAIT_S
    while b"offline" not in b"".join(status.payloads("status")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.payloads("status")[-1] == b'{"v":1,"state":"offline","boot":1}'
    late = listen(BASE + "s1/status")  # a newcomer gets the retained last will
    deadline = time.monotonic() + WAIT_S
    while not late.payloads("status") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.payloads("status") == [b'{"v":1,"state":"offline","boot":1}']


def test_refused_connection_raises(servers: Any) -> None:
    locked = servers.mosquitto()
    locked.stop()
    locked.config_path.write_text(
        locked.config_path.read_text().replace("allow_anonymous true", "allow_anonymous false")
    )
    locked.start()

    async def scenario() -> str:
        c = Client("127.0.0.1", locked.port, "shopwatt-x", 10)
        try:
            await c.connect()
        except MqttError as err:
            return str(err)
        finally:
            await c.close()
        return "connected"

    assert "refused" in asyncio.run(scenario())


def test_sensor_replays_in_order_after_a_broker_outage(
    mosquitto: Mosquitto, listen: Any, tmp_path: Path
) -> None:
    sub = listen(BASE + "+/reading")
    status = listen(BASE + "+/status")
    _hal, sensor = _sensor(tmp_path, mosquitto.port)
    buffered = 0

    async def scenario() -> None:
        nonlocal buffered
        task = asyncio.create_task(sensor.run())
        await until(lambda: len(sub.payloads("reading")) >= 2, "readings while online")
        # A broker restart: readings must go to the flash ring meanwhile. (Not a SIGKILL:
        # mosquitto then loses what it acknowledged but had not saved yet, the listener's
        # queued messages included, which would be the broker's loss, not the sensor's.)
        mosquitto.stop()
        await until(lambda: len(sensor.ring) >= 3, "readings buffered in flash")
        buffered = len(sensor.ring)
        mosquitto.start()
        await until(lambda: len(sensor.outbox) == 0 and sensor.connected, "the replay")
        last = sensor.seq - 1
        await until(
            lambda: last in {json.loads(p)["s"] for p in sub.payloads("reading")},
            "the last reading at the listener",
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    payloads = sub.payloads("reading")
    first: dict[int, bytes] = {}
    order = []
    for p in payloads:
        s = json.loads(p)["s"]
        if s in first:
            assert first[s] == p  # a redelivery or replay is byte-identical
        else:
            first[s] = p
            order.append(s)
    assert order == sorted(order)  # replayed in order
    assert all(_valid("reading", p) for p in payloads)
    assert all(_valid("status", p) for p in status.payloads("status"))
    assert set(first) == set(range(max(first) + 1))  # no gap: nothing lost
    assert buffered >= 3 and sensor.ring.dropped == 0
    online = [json.loads(p) for p in status.payloads("status")]
    assert [s["state"] for s in online].count("online") >= 2  # after boot and after the outage
    assert all(s["boot"] == sensor.state.boot for s in online)


def test_sensor_commands_persist_status_and_reboot(
    mosquitto: Mosquitto, listen: Any, tmp_path: Path
) -> None:
    status = listen(BASE + "+/status")
    hal, sensor = _sensor(tmp_path, mosquitto.port)
    cmd_topic = BASE + "esp32-a1b2c3/cmd"
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="gw")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()

    def send(payload: bytes) -> None:
        pub.publish(cmd_topic, payload, qos=1).wait_for_publish(5)

    async def scenario() -> None:
        task = asyncio.create_task(sensor.run())
        await until(lambda: sensor.connected and len(status.payloads("status")) >= 1, "online")
        writes = sensor.flash.writes
        send(b'{"v":1,"cmd":"persist"}')
        await until(lambda: sensor.flash.writes > writes, "the persist command")
        send(b'{"v":1,"cmd":"selfdestruct"}')
        send(b"reboot")
        await until(lambda: sensor.cmd_bad == 2, "two bad commands counted")
        send(b'{"v":1,"cmd":"status"}')
        await until(
            lambda: any(b'"cmd_bad":2' in p for p in status.payloads("status")),
            "a status showing the bad commands",
        )
        send(b'{"v":1,"cmd":"reboot"}')
        with pytest.raises(FakeReset):
            await asyncio.wait_for(task, WAIT_S)

    asyncio.run(scenario())
    pub.loop_stop()
    pub.disconnect()
    assert hal.resets == 1
    deadline = time.monotonic() + WAIT_S
    while b"offline" not in status.payloads("status")[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(status.payloads("status")[-1]) == {
        "v": 1,
        "state": "offline",
        "boot": sensor.state.boot,
    }


def test_job_button_and_card_events_wait_out_an_outage_and_arrive_in_order(
    mosquitto: Mosquitto, listen: Any, tmp_path: Path
) -> None:
    jobs = listen("shopwatt/v1/demo/cnc-01/job")
    hal = FakeHal(folder=str(tmp_path), clock_ms=lambda: int(time.monotonic() * 1000))
    hal.set_samples(34, wave(2017, 2017.0, 400.0, noise_counts=1.0))
    sensor = make_sensor(
        hal,
        window_ms=1000,
        burst=50,
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "keepalive_s": 10},
        button={"pin": 4},
        card_reader={"poll_ms": 50},
    )
    switch = sensor.jobs
    assert switch is not None
    card = "04A1B2C3D4E5F6"

    async def hold_off() -> None:
        await asyncio.sleep(HOLDOFF_MS / 1000 + 0.1)  # people press twice; see jobs.py

    async def push() -> None:
        # A bouncing push: the contacts chatter, then stay closed until the job flips.
        running = switch.job
        for level in (True, False, True, False):
            hal.button_down = level
            await asyncio.sleep(0.003)
        hal.button_down = True
        await until(lambda: switch.job != running, "the press to take")
        hal.button_down = False

    async def tap() -> None:
        running = switch.job
        hal.reader.card = bytes.fromhex(card)
        await until(lambda: switch.job != running, "the tap to take")
        hal.reader.card = None

    async def scenario() -> None:
        task = asyncio.create_task(sensor.run())
        await until(lambda: sensor.connected and sensor.clock.syncs > 0, "online, clock synced")
        mosquitto.stop()
        await push()  # start
        await hold_off()
        hal.reader.card = bytes.fromhex("DEADBEEF")  # another card: refused
        await until(lambda: sensor.refused > 0, "the refusal")
        hal.reader.card = None
        await hold_off()
        await push()  # stop
        await hold_off()
        await tap()  # start with the card
        await hold_off()
        await tap()  # the same card stops it
        assert len(switch.ring) == 4  # all waiting in flash
        mosquitto.start()
        await until(lambda: len(switch.ring) == 0 and len(jobs.payloads("job")) >= 4, "replay")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    events = [json.loads(p) for p in jobs.payloads("job")]
    assert [(e["event"], e.get("card")) for e in events] == [
        ("start", None),
        ("stop", None),
        ("start", card),
        ("stop", card),
    ]
    assert events[0]["job"] == events[1]["job"] != events[2]["job"] == events[3]["job"]
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert all(_valid("job", p) for p in jobs.payloads("job"))
