"""A small MQTT 3.1.1 client on asyncio streams: QoS 1 publish, subscribe, keepalive, LWT.

Works unchanged on MicroPython's asyncio and CPython's. One connection per instance:
when it dies (socket error, missed pings, broker gone) every waiting call fails with
MqttError and the owner reconnects with a new instance (see app.Sensor._network).
"""

import asyncio

from . import mqtt_codec as codec
from .mqtt_codec import MqttError

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Callable


class Client:
    """One MQTT session to one broker."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        keepalive_s: int = 60,
        will: "tuple[str, bytes, int, bool] | None" = None,
        user: str | None = None,
        password: str | None = None,
        on_message: "Callable[[str, bytes], None] | None" = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.will = will
        self.user = user
        self.password = password
        self.on_message = on_message
        self.alive = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pid = 0
        self._waiting: dict[int, asyncio.Event] = {}
        self._acked: dict[int, int] = {}
        self._heard = False
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, timeout_s: float = 10) -> bool:
        """Open the session; True if the broker kept our previous session."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout_s
        )
        await self._send(
            codec.connect(
                self.client_id, self.keepalive_s, False, self.will, self.user, self.password
            )
        )
        first, body = await asyncio.wait_for(self._read_packet(), timeout_s)
        ack = codec.parse(first, body)
        if ack.kind != codec.CONNACK or ack.code != 0:
            raise MqttError(f"broker refused the connection (code {ack.code})")
        self.alive = True
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._keepalive())]
        return ack.session

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout_s: float = 10
    ) -> None:
        """Publish; with QoS 1, return only once the broker acknowledged it."""
        if qos == 0:
            await self._send(codec.publish(topic, payload, 0, retain, 0))
            return
        pid = self._new_pid()
        await self._await_ack(pid, codec.publish(topic, payload, qos, retain, pid), timeout_s)

    async def subscribe(self, topic: str, qos: int = 1, timeout_s: float = 10) -> None:
        """Subscribe to one topic filter; MqttError if the broker refuses."""
        pid = self._new_pid()
        if await self._await_ack(pid, codec.subscribe(pid, topic, qos), timeout_s) == 0x80:
            raise MqttError("broker refused the subscription to " + topic)

    async def close(self, goodbye: bool = False) -> None:
        """End the connection; goodbye sends DISCONNECT (which suppresses the last will)."""
        was_alive = self.alive
        self.alive = False
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self._writer is None:
            return
        try:
            if goodbye and was_alive:
                await self._send(codec.DISCONNECT)
            self._writer.close()
            await self._writer.wait_closed()
        except OSError:
            pass  # the socket is already gone: nothing left to close
        self._writer = None
        self._wake_all()

    def _new_pid(self) -> int:
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _send(self, data: bytes) -> None:
        if self._writer is None:
            raise MqttError("not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def _await_ack(self, pid: int, packet: bytes, timeout_s: float) -> int:
        if not self.alive:
            raise MqttError("not connected")
        event = asyncio.Event()
        self._waiting[pid] = event
        try:
            await self._send(packet)
            await asyncio.wait_for(event.wait(), timeout_s)
        except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
            raise MqttError(f"no acknowledgement for packet {pid}") from None
        finally:
            self._waiting.pop(pid, None)
        if pid not in self._acked:
            raise MqttError(f"connection lost before packet {pid} was acknowledged")
        return self._acked.pop(pid)

    async def _read_packet(self) -> "tuple[int, bytes]":
        assert self._reader is not None
        first = (await self._reader.readexactly(1))[0]
        head = b""
        while True:
            head += await self._reader.readexactly(1)
            decoded = codec.decode_varlen(head)
            if decoded is not None:
                break
        length = decoded[0]
        body = await self._reader.readexactly(length) if length else b""
        return first, body

    async def _receive(self) -> None:
        try:
            while True:
                first, body = await self._read_packet()
                self._heard = True
                pkt = codec.parse(first, body)
                if pkt.kind in (codec.PUBACK, codec.SUBACK):
                    event = self._waiting.get(pkt.pid)
                    if event is not None:
                        self._acked[pkt.pid] = pkt.code
                        event.set()
                elif pkt.kind == codec.PUBLISH:
                    if pkt.qos:
                        await self._send(codec.puback(pkt.pid))
                    if self.on_message is not None:
                        self.on_message(pkt.topic, pkt.payload)
        except (OSError, EOFError, MqttError, ValueError):
            # EOF (IncompleteReadError is an EOFError), reset, or garbage: the session is over.
            self.alive = False
            self._wake_all()

    async def _keepalive(self) -> None:
        # A PINGREQ every half keepalive; two silent halves in a row mean the link is dead
        # even if TCP has not noticed (Wi-Fi gone, NAT dropped us).
        silent = 0
        while self.alive:
            await asyncio.sleep(self.keepalive_s / 2)
            silent = 0 if self._heard else silent + 1
            self._heard = False
            if silent >= 2:
                self.alive = False
                self._wake_all()
                return
            try:
                await self._send(codec.PINGREQ)
            except (OSError, MqttError):
                self.alive = False
                self._wake_all()
                return

    def _wake_all(self) -> None:
        for event in self._waiting.values():
            event.set()
