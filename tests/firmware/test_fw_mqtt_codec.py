# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""MQTT 3.1.1 packets byte for byte, as the OASIS specification lays them out."""

from firmware import mqtt_codec as codec


def test_remaining_length_encoding_at_every_boundary() -> None:
    # Spec table 2.4: 1 byte up to 127, 2 up to 16383, 3 up to 2097151, 4 up to 268435455.
    cases = {
        0: b"\x00",
        127: b"\x7f",
        128: b"\x80\x01",
        16383: b"\xff\x7f",
        16384: b"\x80\x80\x01",
        2097151: b"\xff\xff\x7f",
        2097152: b"\x80\x80\x80\x01",
        268435455: b"\xff\xff\xff\x7f",
    }
    for n, enc in cases.items():
        assert codec.varlen(n) == enc
        assert codec.decode_varlen(enc + b"\x99") == (n, len(enc))
    assert codec.decode_varlen(b"\x80") is None  # needs more bytes
    for bad in (lambda: codec.varlen(268435456), lambda: codec.decode_varlen(b"\x80\x80\x80\x80")):
        try:
            bad()
        except codec.MqttError:
            continue
        raise AssertionError("accepted")


def test_connect_with_last_will_and_credentials() -> None:
    pkt = codec.connect("shopwatt-s1", 60, False, ("a/status", b"off", 1, True), "u", "p")
    body = (
        b"\x00\x04MQTT\x04"  # protocol name and level 4 (3.1.1)
        + bytes((0x80 | 0x40 | 0x20 | 0x08 | 0x04,))  # user, password, will retain, QoS 1, will
        + b"\x00\x3c"  # keepalive 60 s
        + b"\x00\x0bshopwatt-s1"
        + b"\x00\x08a/status\x00\x03off"
        + b"\x00\x01u\x00\x01p"
    )
    assert pkt == b"\x10" + bytes((len(body),)) + body


def test_clean_connect_without_will() -> None:
    assert codec.connect("c", 30, True) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x1e\x00\x01c"


def test_publish_subscribe_and_acks() -> None:
    assert codec.publish("a/b", b"hi", 1, False, 10) == b"\x32\x09\x00\x03a/b\x00\x0ahi"
    assert codec.publish("a/b", b"hi", 0, True, 0) == b"\x31\x07\x00\x03a/bhi"
    assert codec.publish("t", b"", 1, True, 1, dup=True)[0] == 0x3B
    assert codec.subscribe(7, "x/cmd", 1) == b"\x82\x0a\x00\x07\x00\x05x/cmd\x01"
    assert codec.puback(258) == b"\x40\x02\x01\x02"


def test_parse_what_the_broker_sends() -> None:
    ack = codec.parse(0x20, b"\x01\x00")
    assert ack.kind == codec.CONNACK and ack.session and ack.code == 0
    assert codec.parse(0x20, b"\x00\x05").code == 5  # not authorised
    assert codec.parse(0x40, b"\x00\x0a").pid == 10
    sub = codec.parse(0x90, b"\x00\x07\x80")
    assert sub.kind == codec.SUBACK and sub.pid == 7 and sub.code == 0x80
    msg = codec.parse(0x32, b"\x00\x05x/cmd\x00\x2a{}")
    assert (msg.kind, msg.topic, msg.qos, msg.pid, msg.payload) == (
        codec.PUBLISH,
        "x/cmd",
        1,
        42,
        b"{}",
    )
    assert codec.parse(0xD0, b"").kind == codec.PINGRESP
    try:
        codec.parse(0xA0, b"\x00\x01")  # UNSUBACK: we never unsubscribe
    except codec.MqttError:
        return
    raise AssertionError("accepted")
