# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""The offline ring: replay order, bounds, what happens when full, recovery after reboot."""

from fw_support import scratch

from firmware.area import FileArea
from firmware.hal_fake import MemArea
from firmware.outbox import Outbox
from firmware.ring import MAX_PAYLOAD, SLOT, Ring
from firmware.state import State, decode


def _msg(i: int) -> bytes:
    return ('{"s":' + str(i) + "}").encode()


def _drain(ring: Ring) -> "list[bytes]":
    out = []
    while True:
        p = ring.peek()
        if p is None:
            return out
        out.append(bytes(p))
        ring.pop()


def test_replay_is_in_order_and_byte_identical() -> None:
    ring = Ring(MemArea(), 16)
    sent = [_msg(i) for i in range(10)]
    for p in sent:
        ring.push(p)
    assert len(ring) == 10
    assert _drain(ring) == sent
    assert len(ring) == 0 and ring.peek() is None


def test_full_ring_drops_the_oldest_and_counts_it() -> None:
    ring = Ring(MemArea(), 8)
    for i in range(20):
        ring.push(_msg(i))
    assert len(ring) == 8
    assert ring.dropped == 12
    assert _drain(ring) == [_msg(i) for i in range(12, 20)]


def test_ring_survives_a_reboot_from_its_file() -> None:
    folder = scratch()
    area = FileArea(folder + "/ring.bin")
    ring = Ring(area, 8)
    for i in range(13):  # wraps once: slots hold 5..12
        ring.push(_msg(i))
    ring.pop()  # 5 was sent
    ring.pop()  # 6 was sent
    head = ring.head
    area.close()
    again = Ring(FileArea(folder + "/ring.bin"), 8)
    again.recover(head)
    assert len(again) == 6
    assert _drain(again) == [_msg(i) for i in range(7, 13)]


def test_stale_head_after_power_cut_replays_duplicates_never_loses() -> None:
    area = MemArea()
    ring = Ring(area, 8)
    for i in range(5):
        ring.push(_msg(i))
    persisted = ring.head  # 0: the head was saved before anything was sent
    ring.pop()
    ring.pop()
    again = Ring(area, 8)
    again.recover(persisted)
    assert _drain(again) == [_msg(i) for i in range(5)]  # 0 and 1 again: the gateway dedups


def test_a_torn_or_corrupt_slot_is_skipped_and_counted() -> None:
    area = MemArea()
    ring = Ring(area, 8)
    for i in range(4):
        ring.push(_msg(i))
    area.data[SLOT * 2 + 8] ^= 0xFF  # flip a payload byte of reading 1 (ring index 2)
    assert _drain(ring) == [_msg(0), _msg(2), _msg(3)]
    assert ring.corrupt == 1 and ring.lost == 1  # visible in the readings' x


def test_recover_on_blank_storage_is_empty() -> None:
    ring = Ring(MemArea(), 8)
    ring.recover(0)
    assert len(ring) == 0 and ring.peek() is None


def test_payload_too_big_for_a_slot_is_refused() -> None:
    ring = Ring(MemArea(), 4)
    ring.push(b"x" * MAX_PAYLOAD)
    try:
        ring.push(b"x" * (MAX_PAYLOAD + 1))
    except ValueError:
        return
    raise AssertionError("an oversized reading was accepted")


def test_outbox_keeps_order_across_link_loss() -> None:
    ring = Ring(MemArea(), 16)
    box = Outbox(ring)
    box.link_up()
    box.put(_msg(0))  # fast path: RAM, no flash write
    assert len(ring) == 0 and box.next() == _msg(0)
    box.put(_msg(1))  # 0 is still in flight: 1 waits in the ring
    assert box.link_down() is True  # 0 unacknowledged: back in FRONT of the ring
    box.put(_msg(2))  # offline: straight to the ring
    box.link_up()
    got = []
    while box.next() is not None:
        got.append(bytes(box.next() or b""))
        box.done()
    assert got == [_msg(0), _msg(1), _msg(2)]


def test_outbox_unacknowledged_reading_when_ring_is_full_is_counted() -> None:
    ring = Ring(MemArea(), 4)
    box = Outbox(ring)
    box.link_up()
    box.put(_msg(0))
    for i in range(1, 5):
        box.put(_msg(i))  # fills the ring
    assert box.link_down() is False
    assert ring.dropped == 1
    assert _drain(ring) == [_msg(i) for i in range(1, 5)]


def test_reading_put_back_on_a_fresh_ring_survives_a_power_cut_with_the_rest() -> None:
    # Regression: the first reading ever sent is unacknowledged when the link drops, so it
    # goes back in front of an empty ring; the head must stay a valid index for recovery.
    area = MemArea()
    state = State()
    ring = Ring(area, 16)
    ring.recover(state.head)  # a blank device
    box = Outbox(ring)
    box.link_up()
    box.put(_msg(0))
    assert box.link_down() is True
    for i in range(1, 5):
        box.put(_msg(i))
    state.head = ring.head  # the sensor persists the head right after link_down()
    saved = decode(state.encode())
    assert saved is not None
    again = Ring(area, 16)
    again.recover(saved.head)
    assert _drain(again) == [_msg(i) for i in range(5)]
