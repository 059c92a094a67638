"""MQTT input: the sensors' readings, statuses and job events (docs/protocol.md).

A transactional input. Paho's network thread decodes each message as it arrives and
queues it with its acknowledgement token; the service takes the queue in batches, makes a
batch durable (ledger + outbox) and only then acknowledges it (`ack()`). A gateway killed
at any moment therefore loses nothing: the broker redelivers what was not acknowledged
and the dedup drops what had been stored.

The session is persistent (MQTT 5: fixed client id, clean start off, a session that never
expires), so the broker queues readings while the gateway is away. MQTT 5 also lets the
gateway say how many unacknowledged messages it takes at once (Receive Maximum): with
MQTT 3.1.1 the broker's `max_inflight_messages` (20 by default) would cap the throughput
at 20 messages per batch. The sensors themselves stay on MQTT 3.1.1.

Invalid messages are counted by reason, published with their reason to the dead-letter
topic `shopwatt/v1/<site>/_deadletter` and logged once per reason per minute.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.clock import now_ms
from gateway.config import Mqtt, ShopConfig
from gateway.counted import counted
from gateway.engine.localtime import iso_utc
from gateway.engine.model import Stats
from gateway.inputs.mqtt_tls import describe_connect_failure, tls_context
from gateway.inputs.protocol import (
    DECODERS,
    Decoded,
    JobEvent,
    Rejected,
    SensorReading,
    StatusReport,
    parse_topic,
    plausible_window,
)
from gateway.inputs.tracker import SensorSpec
from gateway.secrets import read_secret

log = logging.getLogger("shopwatt.mqtt")

# Messages the broker may send before the gateway acknowledges: a batch of readings waits
# for its commit, so this bounds both memory (~5 MB of payloads) and throughput.
RECEIVE_MAXIMUM = 10_000
# A batch is committed when this many messages are waiting, even before batch_s is up.
BATCH_READY = RECEIVE_MAXIMUM // 2
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
UNKNOWN_SENSOR = "unknown_sensor"  # a well-formed topic of a sensor shop.toml does not list
IN_FUTURE = "in_future"  # a reading or job event dated more than a day after the gateway's clock
DEADLETTER_PER_S = 50  # dead letters published per second at most; the rest only counted
DEADLETTER_MAX_BYTES = 2048  # payload bytes copied into a dead letter
_LOG_EVERY_S = 60.0
# Connections the broker closes this soon after they were made, this many times in a row:
# another client with the same client id takes the session over each time it reconnects
# (MQTT allows one connection per client id), and the two knock each other off for ever.
SHORT_SESSION_S = 10.0
TAKEOVER_STREAK = 3
COUNTERS = (
    *("received", "accepted", "rejected", "ignored", "internal_errors"),
    *("deadletters", "deadletters_skipped", "acks_skipped", "connects", "disconnects"),
)


def _check_not_ahead(decoded: Decoded, now_ms: int) -> None:
    """A reading or job event dated past the plausible window: the sender's clock is wrong
    (stored, it would open a month years ahead that no close could ever reach)."""
    t = decoded.t if isinstance(decoded, SensorReading | JobEvent) else None
    last = plausible_window(now_ms)[1]
    if t is not None and t > last:
        raise Rejected(IN_FUTURE, f"t = {t} ({iso_utc(t)}), after {iso_utc(last)}")


def deadletter_topic(site: str) -> str:
    """Where rejected messages go, with their reason (`_` keeps it clear of machine ids)."""
    return f"shopwatt/v1/{site}/_deadletter"


def subscriptions(site: str) -> list[str]:
    """The protocol's three topic filters for one site."""
    base = f"shopwatt/v1/{site}"
    return [f"{base}/+/+/reading", f"{base}/+/+/status", f"{base}/+/job"]


def sensor_specs(cfg: ShopConfig) -> dict[str, SensorSpec]:
    """Every [[machine.sensor]] and [[site_meter.sensor]] of the shop, by sensor id."""
    return {
        s.id: SensorSpec(m.id, tuple(s.channels), f"mqtt:{s.id}")
        for m in cfg.metered.values()
        for s in m.sensor
    }


@dataclass
class Inbox:
    """Messages taken in one batch, and how to acknowledge them."""

    readings: list[tuple[str, SensorReading]] = field(default_factory=list)  # (sensor, reading)
    statuses: list[tuple[str, StatusReport]] = field(default_factory=list)
    jobs: list[tuple[str, JobEvent]] = field(default_factory=list)  # (machine, event)
    seen_ms: dict[str, int] = field(default_factory=dict)  # sensor -> last message received
    acks: list[tuple[int, int]] = field(default_factory=list)  # (session, mid) of QoS 1

    def __len__(self) -> int:
        return len(self.acks)


class MqttInput:
    """Subscribes to the site's sensor topics; `take()` hands over what arrived."""

    def __init__(self, cfg: ShopConfig, batch_ready: threading.Event | None = None) -> None:
        if cfg.mqtt is None:
            raise ValueError("MqttInput needs an [mqtt] section")
        self._cfg: Mqtt = cfg.mqtt
        self.site = cfg.site.id
        self.sensors = sensor_specs(cfg)
        self._machines = set(cfg.machines)
        self._password = read_secret(cfg.mqtt, cfg.source.parent, "mqtt")
        self._tls = tls_context(cfg.mqtt, cfg.source.parent)
        self._batch_ready = batch_ready or threading.Event()
        self._lock = threading.Lock()
        self._inbox = Inbox()
        self._session = 0  # +1 per connection: a mid only means something in its session
        self._stopping = False
        self._connected_at: float | None = None  # monotonic time of the current connection
        self._short_sessions = 0  # connections in a row that lasted under SHORT_SESSION_S
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker granted every subscription
        # Every message received is accepted, rejected, ignored or an internal error; every
        # rejected one is published as a dead letter or (in a flood) only counted.
        self.counts: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self._last_log: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()
        self._dl_tokens = float(DEADLETTER_PER_S)
        self._dl_refill = time.monotonic()
        self._client = self._make_client()

    # -- lifecycle ----------------------------------------------------------------------
    def _make_client(self) -> paho.Client:
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._cfg.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        if self._cfg.username:
            c.username_pw_set(
                self._cfg.username, self._password.reveal() if self._password else None
            )
        if self._tls is not None:
            c.tls_set_context(self._tls)
        c.reconnect_delay_set(1, self._cfg.reconnect_max_s)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    def start(self) -> None:
        """Connect in the background (retrying with backoff until the broker answers)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(
            self._cfg.host,
            self._cfg.port,
            keepalive=self._cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly; what was not acknowledged stays queued at the broker."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    # -- callbacks (paho's network thread) ----------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", *self._where(), reason)
            return
        with self._lock:
            self._session += 1
        self._connected_at = time.monotonic()
        self.counts["connects"] += 1
        client.subscribe([(f, 1) for f in subscriptions(self.site)])
        log.info(
            "MQTT connected to %s:%d%s as %s (%s session)",
            *self._where(),
            " over TLS" if self._tls else "",
            self._cfg.client_id,
            "resumed" if flags.session_present else "new",
        )
        self.connected.set()

    def _on_connect_fail(self, _c: paho.Client, _u: Any) -> None:
        # paho calls this from inside its `except OSError` around the connect attempt and
        # passes no error: the one being handled is the reason (TLS refusal, refused port).
        log.error("MQTT: %s; retrying", describe_connect_failure(sys.exc_info()[1], self._cfg))
        self._short_sessions = 0  # the broker was away: its restarts are no second client

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            log.error("MQTT broker refused the subscriptions: %s (check its ACL)", refused)
        else:
            log.info("MQTT subscribed to %s", ", ".join(subscriptions(self.site)))
            self.subscribed.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if self._stopping:
            return
        self.counts["disconnects"] += 1
        log.warning("MQTT disconnected from %s:%d (%s); reconnecting", *self._where(), reason)
        self._note_session_length()

    def _note_session_length(self) -> None:
        """Warn once per streak when connections keep ending right after they were made:
        paho reports only "Unspecified error" when the broker hands the session over."""
        began, self._connected_at = self._connected_at, None
        if began is None:  # a connect that failed: says nothing about a second client
            return
        short = time.monotonic() - began < SHORT_SESSION_S
        self._short_sessions = self._short_sessions + 1 if short else 0
        if self._short_sessions == TAKEOVER_STREAK:
            log.warning(
                "MQTT broker %s:%d closed the connection %d times in a row within %g s of "
                "connecting: probably another client uses the same client id %r (two "
                "gateways with one [mqtt] client_id?); give each gateway its own client_id",
                *self._where(),
                TAKEOVER_STREAK,
                SHORT_SESSION_S,
                self._cfg.client_id,
            )

    def _where(self) -> tuple[str, int]:
        return self._cfg.host, self._cfg.port

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        # Never raise here: paho would drop the connection. Everything is counted.
        try:
            self._take_message(msg)
        except Exception:
            log.exception("MQTT: unexpected error on a message (counted as internal_errors)")
            self.counts["internal_errors"] += 1
            self._queue_ack(msg)

    def _take_message(self, msg: paho.MQTTMessage) -> None:
        received_ms = now_ms()
        self.counts["received"] += 1
        payload = bytes(msg.payload)
        try:
            topic = msg.topic  # raises for a topic that is not UTF-8
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")  # paho keeps the raw bytes
            self._reject(topic, payload, Rejected("bad_topic", "not UTF-8"))
            self._queue_ack(msg)
            return
        try:
            where = parse_topic(topic)
            if where.kind == "cmd":  # a sensor's own topic; not subscribed, so not expected
                self.counts["ignored"] += 1
                self._queue_ack(msg)
                return
            self._check_ids(where.site, where.machine, where.sensor)
            decoded = DECODERS[where.kind](payload)
            _check_not_ahead(decoded, received_ms)
        except Rejected as rejected:
            self._reject(topic, payload, rejected)
            self._queue_ack(msg)
            return
        with self._lock:
            box = self._inbox
            if isinstance(decoded, SensorReading):
                box.readings.append((where.sensor or "", decoded))
            elif isinstance(decoded, StatusReport):
                box.statuses.append((where.sensor or "", decoded))
            elif isinstance(decoded, JobEvent):
                box.jobs.append((where.machine, decoded))
            if where.sensor:
                box.seen_ms[where.sensor] = received_ms
            self._queue_ack_locked(msg)
            self.counts["accepted"] += 1
            if len(box) >= BATCH_READY:
                self._batch_ready.set()

    def _check_ids(self, site: str, machine: str, sensor: str | None) -> None:
        """The ids must be this shop's: a sensor under its own machine, a known machine."""
        if site != self.site:
            raise Rejected(UNKNOWN_SENSOR, f"site {site!r}")
        if sensor is None:
            if machine not in self._machines:
                raise Rejected(UNKNOWN_SENSOR, f"machine {machine!r} is not in shop.toml")
            return
        spec = self.sensors.get(sensor)
        if spec is None or spec.machine != machine:
            raise Rejected(
                UNKNOWN_SENSOR,
                f"sensor {sensor!r} is not a [[machine.sensor]] or [[site_meter.sensor]] "
                f"of {machine!r}",
            )

    def _queue_ack(self, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self._queue_ack_locked(msg)

    def _queue_ack_locked(self, msg: paho.MQTTMessage) -> None:
        if msg.qos == 1:
            self._inbox.acks.append((self._session, msg.mid))

    # -- rejected messages --------------------------------------------------------------
    def _reject(self, topic: str, payload: bytes, rejected: Rejected) -> None:
        reason = rejected.reason
        self.counts[f"rejected_{reason}"] += 1
        self.counts["rejected"] += 1
        self._deadletter(topic, payload, rejected)
        now = time.monotonic()
        self._unlogged[reason] += 1
        if now - self._last_log.get(reason, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            log.warning(
                "MQTT: rejected %s as %s, e.g. on %s: %s",
                counted(self._unlogged[reason], "message"),
                reason,
                topic[:120],
                rejected.detail or reason,
            )
            self._last_log[reason] = now
            self._unlogged[reason] = 0

    def _deadletter(self, topic: str, payload: bytes, rejected: Rejected) -> None:
        """Publish the message with its reason; a flood of junk is only counted."""
        now = time.monotonic()
        self._dl_tokens = min(
            float(DEADLETTER_PER_S), self._dl_tokens + (now - self._dl_refill) * DEADLETTER_PER_S
        )
        self._dl_refill = now
        if self._dl_tokens < 1.0:
            self.counts["deadletters_skipped"] += 1
            return
        self._dl_tokens -= 1.0
        body: dict[str, Any] = {
            "reason": rejected.reason,
            "detail": rejected.detail,
            "topic": topic,
            "bytes": len(payload),
            "t": now_ms(),
        }
        part = payload[:DEADLETTER_MAX_BYTES]
        try:
            body["payload"] = part.decode("utf-8")
        except UnicodeDecodeError:
            body["payload_base64"] = base64.b64encode(part).decode()
        self._client.publish(deadletter_topic(self.site), json.dumps(body), qos=1)
        self.counts["deadletters"] += 1

    # -- the service's side -------------------------------------------------------------
    def take(self) -> Inbox:
        """Everything received since the last take (thread-safe)."""
        with self._lock:
            box, self._inbox = self._inbox, Inbox()
            self._batch_ready.clear()
        return box

    def ack(self, box: Inbox) -> None:
        """Acknowledge a batch the service made durable; messages of an older connection
        are left alone: the broker resends them, and the dedup drops the copies."""
        with self._lock:
            session = self._session
        for s, mid in box.acks:
            if s == session:
                self._client.ack(mid, 1)
            else:
                self.counts["acks_skipped"] += 1

    def stats(self) -> Stats:
        """The input's own counters (the per-sensor ones are the tracker's)."""
        return {"mqtt": dict(self.counts) | {"connected": int(self.connected.is_set())}}
