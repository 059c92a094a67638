"""What the virtual shop puts on a real broker is exactly docs/protocol.md.

A subscriber records every message of an accelerated hour of tests/agent/data/live-shop.toml
and checks it with the gateway's own decoder: readings, retained statuses with the last
will during the Wi-Fi outage, replay in order after it, a new boot after the reboot, and
the booked job's start and stop events.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.cli import write_shop_toml
from agent.liverun import RunOptions, RunReport
from agent.shopplan import load_plan
from agent.virtualshop import VirtualShop
from gateway.config import load_config
from gateway.inputs.protocol import JobEvent, SensorReading, StatusReport, decode
from tests.agent.livedata import DAY, PLAN, SCHEDULE
from tests.servers import LOOPBACK, ServerPool

WINDOW_MS = 5_000


@dataclass
class Heard:
    """Every message the subscriber got, decoded, per machine, in arrival order."""

    readings: dict[str, list[SensorReading]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, list[StatusReport]] = field(default_factory=lambda: defaultdict(list))
    jobs: dict[str, list[JobEvent]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """Decode (a protocol violation raises Rejected and fails the test) and file it."""
        where, doc = decode(msg.topic, bytes(msg.payload))
        with self.lock:
            if isinstance(doc, SensorReading):
                self.readings[where.machine].append(doc)
            elif isinstance(doc, StatusReport):
                self.statuses[where.machine].append(doc)
            elif isinstance(doc, JobEvent):
                self.jobs[where.machine].append(doc)


@dataclass(frozen=True)
class Recorded:
    """The run and what was heard."""

    report: RunReport
    heard: Heard
    tz: dt.tzinfo


def _local_ms(tz: dt.tzinfo, hh: int, mm: int) -> int:
    return int(dt.datetime.combine(DAY, dt.time(hh, mm), tz).timestamp() * 1000)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """An hour at 600x with 5 s windows, recorded by a subscriber from the start."""
    plan = load_plan(PLAN)
    pool = ServerPool()
    try:
        broker = pool.mosquitto()
        config = tmp_path_factory.mktemp("protocol") / "shop.toml"
        write_shop_toml(config, plan, None, (LOOPBACK, broker.port))
        heard = Heard()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-listener")
        sub.on_message = heard.on_message
        subscribed = threading.Event()
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.connect(LOOPBACK, broker.port)
        sub.subscribe("shopwatt/#", qos=1)
        sub.loop_start()
        try:
            assert subscribed.wait(10)
            opts = RunOptions(
                host=LOOPBACK,
                port=broker.port,
                duration_s=63 * 60,
                rate_hz=1000 / WINDOW_MS,
                speed=600.0,
                start_ms=_local_ms(plan.site.tz, 7, 57),
                schedule=SCHEDULE,
            )
            report = VirtualShop(load_config(config), plan, opts).run()
            time.sleep(1.0)  # the last messages reach the subscriber
        finally:
            sub.disconnect()
            sub.loop_stop()
        yield Recorded(report, heard, plan.site.tz)
    finally:
        pool.close()


def test_every_window_arrives_in_order_with_the_counter_rule(recorded: Recorded) -> None:
    for machine, sent in recorded.report.machines.items():
        # QoS 1 is at-least-once: a message whose PUBACK was lost to a reconnect may come
        # again (the gateway drops it by sensor, boot and seq); only its first arrival counts.
        firsts: dict[tuple[int, int], SensorReading] = {}
        for r in recorded.heard.readings[machine]:
            firsts.setdefault((r.b, r.s), r)
        readings = list(firsts.values())
        assert len(readings) == sent.readings, machine
        ids = list(firsts)
        assert ids == sorted(ids), machine  # one in flight: replays keep the order
        for before, after in itertools.pairwise(readings):
            if before.b != after.b:
                assert after.s == 0
                continue
            assert after.s == before.s + 1
            assert after.t is not None and before.t is not None
            assert after.t - after.u == before.t - before.u  # one clock per boot
            (_, p, wh), (_, _, wh0) = after.ch[0], before.ch[0]  # type: ignore[misc]
            assert wh - wh0 == pytest.approx(max(p, 0) * after.w / 3.6e6, abs=0.0011)


def test_the_outage_shows_the_last_will_then_a_replay_with_the_original_times(
    recorded: Recorded,
) -> None:
    tz = recorded.tz
    states = [s.state for s in recorded.heard.statuses["mill-1"]]
    # Online, the broker's last will when Wi-Fi went, online again, offline at the end.
    assert [k for k, _ in itertools.groupby(states)] == ["online", "offline", "online", "offline"]
    readings = recorded.heard.readings["mill-1"]
    during = [r for r in readings if _local_ms(tz, 8, 12) < (r.t or 0) <= _local_ms(tz, 8, 18)]
    assert len(during) == 6 * 60 * 1000 // WINDOW_MS  # measured while offline, none lost
    assert recorded.report.machines["mill-1"].buffered >= len(during)


def test_the_reboot_starts_boot_two_at_seq_zero(recorded: Recorded) -> None:
    readings = recorded.heard.readings["printer-1"]
    first = next(r for r in readings if r.b == 2)
    assert first.s == 0
    back = _local_ms(recorded.tz, 8, 52) + 20_000  # 20 s without power
    assert first.t == back + WINDOW_MS
    boots = [s.boot for s in recorded.heard.statuses["printer-1"] if s.state == "online"]
    assert boots[0] == 1 and boots[-1] == 2


def test_the_booked_job_comes_as_start_and_stop_events(recorded: Recorded) -> None:
    (job,) = recorded.report.machines["laser-1"].jobs
    events = recorded.heard.jobs["laser-1"]
    assert [(e.event, e.job, e.t) for e in events] == [
        ("start", "L-1", job.start_ms),
        ("stop", "L-1", job.end_ms),
    ]
    assert events[0].customer == "Spree Robotics"
    assert events[1].parts is not None
    assert not recorded.heard.jobs["mill-1"]  # detected machines have no events
