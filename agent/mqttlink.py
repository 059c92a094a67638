"""MQTT for many simulated publishers on one thread: paho-mqtt clients on one selector.

Each `Session` is one device's connection, with the firmware's rules (app.Sensor.network):
a fixed client id and a persistent session, a retained last will, one message in flight
at a time (the next only after the broker's PUBACK), a new connection after every loss
with exponential backoff. A `Feed` says what the device publishes. All sessions share a
`NetLoop`: paho's external-loop API (`loop_read`, `loop_write`, `loop_misc`) driven by one
`selectors` selector, so a thousand sensors need no thousand threads.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
import zlib
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

KEEPALIVE_S = 60  # the firmware's default
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0  # wall time: the broker is real even when the shop's time is fast


class Feed(Protocol):
    """What one device publishes, and how it reacts to its connection."""

    def will(self) -> tuple[str, bytes] | None:
        """The retained last will (topic, payload), or None."""
        ...

    def link_up(self, session: Session) -> None:
        """Connected: subscribe and publish what a fresh connection publishes."""
        ...

    def link_down(self) -> None:
        """The connection is gone (the unacknowledged message will be sent again)."""
        ...

    def next(self) -> tuple[str, bytes] | None:
        """The oldest message waiting (QoS 1, not retained), the same until done()."""
        ...

    def done(self) -> None:
        """The message from next() was acknowledged."""
        ...

    def message(self, topic: str, payload: bytes) -> None:
        """A message arrived on a subscribed topic."""
        ...


class NetLoop:
    """One selector for the sockets of many paho clients."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.clients: set[mqtt.Client] = set()

    def attach(self, client: mqtt.Client) -> None:
        """Let this loop drive the client's socket."""
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed

    def _opened(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)
        self.clients.add(client)

    def _closed(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self.selector.unregister(sock)
        self.clients.discard(client)

    def poll(self, timeout_s: float) -> None:
        """Read what arrived (waiting up to timeout_s), then write what is queued."""
        for key, _ in self.selector.select(timeout_s):
            client: mqtt.Client = key.data
            client.loop_read()
        self.flush()

    def flush(self) -> None:
        """Write every client's queued packets (paho writes directly outside callbacks)."""
        for client in list(self.clients):
            if client.want_write():
                client.loop_write()

    def keepalive(self) -> None:
        """Pings and dead-connection checks; call about once a second."""
        for client in list(self.clients):
            client.loop_misc()

    def close(self) -> None:
        """Release the selector."""
        self.selector.close()


class Session:
    """One device's MQTT connection; `wanted` says whether it should be connected now."""

    def __init__(self, net: NetLoop, client_id: str, host: str, port: int, feed: Feed) -> None:
        self.net = net
        self.client_id = client_id
        self.host = host
        self.port = port
        self.feed = feed
        self.client: mqtt.Client | None = None
        self.up = False
        self.wanted = True
        self.inflight: int | None = None  # mid of the message from feed.next()
        self.backoff_s = BACKOFF_MIN_S
        self.retry_at = 0.0  # time.monotonic() of the next connection attempt
        self.published = 0  # messages acknowledged (feed messages)
        self.connects = 0
        self.failures = 0  # connection attempts that failed or were refused

    def maintain(self, now: float) -> None:
        """Connect when wanted, not connected and the backoff has passed."""
        if self.wanted and self.client is None and now >= self.retry_at:
            self._connect(now)

    def _connect(self, now: float) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,  # the broker keeps our cmd subscription (docs/protocol.md)
            protocol=mqtt.MQTTv311,
        )
        will = self.feed.will()
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.net.attach(client)
        self.client = client
        try:
            client.connect(self.host, self.port, KEEPALIVE_S)
        except OSError:  # refused, unreachable: no socket was opened
            self.failures += 1
            self._retry_later(now)

    def _retry_later(self, now: float) -> None:
        self.client = None
        # Jitter from the client id, so a shop of sensors does not reconnect in step.
        jitter = (zlib.crc32(self.client_id.encode()) % 1000) / 4000
        self.retry_at = now + self.backoff_s * (1 + jitter)
        self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)

    def _release(self) -> tuple[mqtt.Client | None, bool]:
        """Let go of the client (its callbacks are no longer ours); was it connected?"""
        client, self.client = self.client, None
        was_up, self.up = self.up, False
        if was_up:
            self.inflight = None
            self.feed.link_down()
        return client, was_up

    def drop(self) -> None:
        """Lose the connection without a goodbye (Wi-Fi gone, power cut): the will fires."""
        client, _ = self._release()
        if client is None:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)  # the broker sees the TCP close, no DISCONNECT
        # The loop's next poll reads the end of the stream; paho then closes the socket.

    def goodbye(self, topic: str, payload: bytes) -> None:
        """Publish a last retained message and disconnect cleanly (no will)."""
        client, was_up = self._release()
        if client is None:
            return
        if was_up:
            client.publish(topic, payload, qos=1, retain=True)
        client.disconnect()
        self.net.flush()

    def close(self) -> None:
        """Disconnect cleanly (no will, nothing more to say)."""
        client, _ = self._release()
        if client is not None:
            client.disconnect()
            self.net.flush()

    def pump(self) -> None:
        """Send the feed's next message when nothing is in flight."""
        if not self.up or self.inflight is not None or self.client is None:
            return
        item = self.feed.next()
        if item is None:
            return
        client = self.client
        info = client.publish(item[0], item[1], qos=1)
        # A write to a connection that just died reports the loss from inside publish().
        if client is self.client and self.up:
            self.inflight = info.mid

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        """A QoS 1 message outside the feed's order (status, command answers)."""
        if self.client is not None and self.up:
            self.client.publish(topic, payload, qos=1, retain=retain)

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1."""
        if self.client is not None:
            self.client.subscribe(topic, qos=1)

    # -- paho callbacks (called from loop_read on the loop's thread) -----------------------

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if client is not self.client:
            return
        if reason.is_failure:  # refused (bad credentials, ...): paho closes the socket
            self.failures += 1
            client.disconnect()
            self._retry_later(time.monotonic())
            return
        self.up = True
        self.connects += 1
        self.backoff_s = BACKOFF_MIN_S
        self.feed.link_up(self)

    def _on_disconnect(
        self, client: mqtt.Client, _u: Any, _flags: Any, _reason: Any, _props: Any
    ) -> None:
        if client is not self.client:
            return
        if self.up:
            self.up = False
            self.inflight = None
            self.feed.link_down()
        else:
            self.failures += 1  # lost before the broker accepted us
        self._retry_later(time.monotonic())

    def _on_publish(self, client: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        if client is self.client and mid == self.inflight:
            self.inflight = None
            self.published += 1
            self.feed.done()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if client is self.client:
            self.feed.message(msg.topic, bytes(msg.payload))
