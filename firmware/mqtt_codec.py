"""MQTT 3.1.1 packets the sensor sends and receives (OASIS MQTT v3.1.1, section 3)."""

import struct

CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBACK = 9
PINGRESP = 13

PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class MqttError(Exception):
    """The broker refused, broke the protocol, or the connection is gone."""


def varlen(n: int) -> bytes:
    """The 'remaining length' encoding: 7 bits per byte, at most 4 bytes."""
    if not 0 <= n < 268435456:
        raise MqttError(f"packet too long: {n}")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def decode_varlen(buf: bytes) -> "tuple[int, int] | None":
    """(value, bytes used) from the start of buf; None if more bytes are needed."""
    value = 0
    for i in range(min(len(buf), 4)):
        value |= (buf[i] & 0x7F) << (7 * i)
        if not buf[i] & 0x80:
            return value, i + 1
    if len(buf) >= 4:
        raise MqttError("remaining length longer than 4 bytes")
    return None


def _field(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varlen(len(body)) + body


def connect(
    client_id: str,
    keepalive_s: int,
    clean: bool,
    will: "tuple[str, bytes, int, bool] | None" = None,
    user: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT; will is (topic, payload, qos, retain)."""
    flags = 0x02 if clean else 0
    payload = _field(client_id.encode())
    if will is not None:
        topic, msg, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _field(topic.encode()) + _field(msg)
    if user is not None:
        flags |= 0x80
        payload += _field(user.encode())
        if password is not None:
            flags |= 0x40
            payload += _field(password.encode())
    return _packet(0x10, b"\x00\x04MQTT\x04" + struct.pack("!BH", flags, keepalive_s) + payload)


def publish(
    topic: str, payload: bytes, qos: int, retain: bool, pid: int, dup: bool = False
) -> bytes:
    """PUBLISH (QoS 0 or 1)."""
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    head = _field(topic.encode()) + (struct.pack("!H", pid) if qos else b"")
    return _packet(first, head + payload)


def subscribe(pid: int, topic: str, qos: int) -> bytes:
    """SUBSCRIBE to one topic filter."""
    return _packet(0x82, struct.pack("!H", pid) + _field(topic.encode()) + bytes((qos,)))


def puback(pid: int) -> bytes:
    """PUBACK for a QoS 1 message we received."""
    return b"\x40\x02" + struct.pack("!H", pid)


class Packet:
    """A received packet: kind, and the fields that kind carries."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.pid = 0
        self.code = 0  # CONNACK return code, SUBACK granted QoS (0x80 = refused)
        self.session = False  # CONNACK: the broker kept our session
        self.qos = 0
        self.topic = ""
        self.payload = b""


def parse(first: int, body: bytes) -> Packet:
    """Decode a packet from its first byte and its body (after the remaining length)."""
    pkt = Packet(first >> 4)
    kind = pkt.kind
    if kind == CONNACK:
        if len(body) != 2:
            raise MqttError("bad CONNACK")
        pkt.session = bool(body[0] & 1)
        pkt.code = body[1]
    elif kind in (PUBACK, SUBACK):
        if len(body) < 2:
            raise MqttError("bad ack")
        pkt.pid = struct.unpack("!H", body[:2])[0]
        if kind == SUBACK:
            pkt.code = body[2] if len(body) > 2 else 0x80
    elif kind == PUBLISH:
        pkt.qos = (first >> 1) & 3
        n = struct.unpack("!H", body[:2])[0]
        pkt.topic = body[2 : 2 + n].decode()
        at = 2 + n
        if pkt.qos:
            pkt.pid = struct.unpack("!H", body[at : at + 2])[0]
            at += 2
        pkt.payload = body[at:]
    elif kind != PINGRESP:
        raise MqttError(f"unexpected packet type {kind}")
    return pkt
