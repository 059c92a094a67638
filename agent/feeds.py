"""What the simulated devices publish (docs/protocol.md): a sensor's feed and a job panel's.

`SensorFeed` is the firmware's network task (app.Sensor.network/_drain) over a paho
session: readings from the firmware's outbox oldest first, byte-identical on replay; the
retained online status on connect and every `status_s`; the offline status as last will;
commands handed to the firmware's own parser. `JobPanel` is an operator's start/stop
panel for machines whose jobs are booked explicitly.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Callable

from agent.mqttlink import Session
from agent.virtualsensor import VirtualSensor
from firmware import encode
from gateway.engine.model import ExplicitJob

PROTOCOL = "shopwatt/v1"


class SensorFeed:
    """One virtual sensor's publishing, following the firmware's rules."""

    def __init__(self, sensor: VirtualSensor, now_ms: Callable[[], int]) -> None:
        self.sensor = sensor
        self.now_ms = now_ms  # the simulated UTC clock
        cfg = sensor.cfg
        base = f"{PROTOCOL}/{cfg.site}/{cfg.machine}/{cfg.sensor}/"
        self.topic_reading = base + "reading"
        self.topic_status = base + "status"
        self.topic_cmd = base + "cmd"
        self.session: Session | None = None
        self.reboot_requested = False  # a `reboot` command arrived: the loop resets us
        self.buffered = 0  # readings delivered from the flash ring (outage, or queued behind one)

    def will(self) -> tuple[str, bytes] | None:
        """The offline status of the current boot."""
        fw = self.sensor.fw
        return None if fw is None else (self.topic_status, encode.status_offline(fw.state.boot))

    def link_up(self, session: Session) -> None:
        """Like the firmware: outbox online, subscribe to cmd, retained online status."""
        fw = self.sensor.fw
        self.session = session
        if fw is None:
            return
        fw.outbox.link_up()
        session.subscribe(self.topic_cmd)
        self.publish_status()

    def publish_status(self) -> None:
        """The retained online status, now."""
        if self.session is not None and self.sensor.powered:
            self.session.publish(self.topic_status, self.sensor.status(self.now_ms()), True)

    def link_down(self) -> None:
        """The reading in flight goes back in front of the ring (persisted if it moved)."""
        fw = self.sensor.fw
        if fw is not None and fw.outbox.link_down():
            fw.persist(True)

    def next(self) -> tuple[str, bytes] | None:
        """The oldest unacknowledged reading."""
        fw = self.sensor.fw
        payload = None if fw is None else fw.outbox.next()
        return None if payload is None else (self.topic_reading, payload)

    def done(self) -> None:
        """PUBACK: forget the reading; persist the ring head when the firmware wants it."""
        fw = self.sensor.fw
        if fw is None:
            return
        if fw.outbox.ram is None:
            self.buffered += 1
        fw.outbox.done()
        if fw.flash_due(fw.clock.uptime()):
            fw.persist(True)

    def backlog(self) -> int:
        """Readings not yet acknowledged by the broker."""
        fw = self.sensor.fw
        return 0 if fw is None else len(fw.outbox)

    def message(self, topic: str, payload: bytes) -> None:
        """A command: the firmware parses and counts it; this carries it out."""
        fw = self.sensor.fw
        if fw is None:
            return
        fw.on_message(topic, payload)
        command, fw.command = fw.command, None
        if command == "persist":
            fw.persist(True)
        elif command == "status":
            self.publish_status()
        elif command == "reboot":
            self.reboot_requested = True


def job_event(job: ExplicitJob, event: str, source: str = "agent-panel") -> bytes:
    """A start or stop event of a booked job (docs/protocol.md, Job event)."""
    doc: dict[str, object] = {"v": 1, "event": event, "job": job.job_id}
    if event == "start":
        doc["customer"] = job.customer
    else:
        # The good parts of the job, made up but stable per job id.
        doc["parts"] = zlib.crc32(job.job_id.encode()) % 40 + 1
    doc |= {"t": job.start_ms if event == "start" else job.end_ms, "src": source}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class JobPanel:
    """The operator panel: job events queued in order, sent one at a time (QoS 1)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.queue: deque[tuple[str, bytes]] = deque()

    def add(self, machine: str, job: ExplicitJob, event: str) -> None:
        """Queue a start or stop event for a machine."""
        self.queue.append((f"{PROTOCOL}/{self.site}/{machine}/job", job_event(job, event)))

    def will(self) -> tuple[str, bytes] | None:
        """A panel has no status."""
        return None

    def link_up(self, session: Session) -> None:
        """Nothing to announce."""

    def link_down(self) -> None:
        """The event in flight stays first in the queue."""

    def next(self) -> tuple[str, bytes] | None:
        """The oldest event not yet acknowledged."""
        return self.queue[0] if self.queue else None

    def done(self) -> None:
        """Acknowledged."""
        self.queue.popleft()

    def backlog(self) -> int:
        """Events not yet acknowledged."""
        return len(self.queue)

    def message(self, topic: str, payload: bytes) -> None:
        """The panel subscribes to nothing."""
