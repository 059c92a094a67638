# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""The job button and the card reader: debounce, taps, the MFRC522 driver on the simulated
chip, start/stop with refusals, persistence across reboots, the events and the LED."""

import binascii
import json

from fw_support import VECTORS

from firmware import encode
from firmware.hal_fake import FakeHal, MemArea
from firmware.jobs import (
    REFUSED_TICKS,
    SIZE,
    Debounce,
    JobSwitch,
    TapWatch,
    led_on,
)
from firmware.mfrc522 import Mfrc522, ReaderError, crc_a, uid_hex
from firmware.ring import Ring

T = 1763805600000  # a synced UTC clock
UIDS = ("04A1B2C3", "04A1B2C3D4E5F6", "04A1B2C3D4E5F60718A9")  # single, double, triple size


def _reader() -> "tuple[FakeHal, Mfrc522]":
    hal = FakeHal()
    reader = Mfrc522(hal.spi_device(2, 18, 23, 19, 5, None))
    reader.init()
    return hal, reader


def test_crc_a_matches_the_standard_halt_frame() -> None:
    assert crc_a(bytes((0x50, 0x00))) == bytes((0x57, 0xCD))  # HLTA is 50 00 57 CD on air


def test_the_reader_reads_uids_of_every_size_and_again_while_the_card_lies_there() -> None:
    hal, reader = _reader()
    assert reader.read_uid() is None  # no card
    for uid in UIDS:
        hal.reader.card = binascii.unhexlify(uid)
        first, second = reader.read_uid(), reader.read_uid()
        assert first is not None and uid_hex(first) == uid
        assert second == first  # halted after the read, woken by the next poll's WUPA
        assert hal.reader.card_state == "halt"


def test_two_cards_at_once_or_a_missing_chip_give_no_uid() -> None:
    hal, reader = _reader()
    hal.reader.card = binascii.unhexlify(UIDS[0])
    hal.reader.cards = 2
    assert reader.read_uid() is None
    hal.reader.regs[0x37] = 0xFF  # MISO floating high: no chip answers
    try:
        reader.init()
    except ReaderError as err:
        assert "0xFF" in str(err)
    else:
        raise AssertionError("no error without a chip")


def test_a_bouncing_button_gives_one_press_per_push() -> None:
    db = Debounce(30)
    # Contacts bounce for 8 ms on the way down and on the way up; polled every 2 ms.
    down = [True, False, True, True, False] + [True] * 40
    up = [False, True, False, False, True] + [False] * 40
    presses = []
    t = 0
    for level in down + up + down:
        if db.feed(level, t):
            presses.append(t)
        t += 2
    assert len(presses) == 2
    assert presses[0] >= 8 + 30  # only once the level held for the debounce time
    db2 = Debounce(30)
    assert not any(db2.feed(i % 2 == 0, i * 5) for i in range(200))  # chatter never settles


def test_a_card_counts_when_it_arrives_not_while_it_lies_there() -> None:
    taps = TapWatch(600)
    reads = ["A", "A", None, "A", "A", None, None, None, None, "A", "B", None]
    seen = [taps.feed(card, i * 200) for i, card in enumerate(reads)]
    # One missed read (200 ms) is not a removal; 800 ms without a read is.
    assert seen == ["A", None, None, None, None, None, None, None, None, "A", "B", None]


def _switch(area: MemArea, ring_area: MemArea) -> JobSwitch:
    sw = JobSwitch(area, Ring(ring_area, 8), "esp32-a1b2c3")
    sw.load()
    return sw


def _events(sw: JobSwitch) -> "list[dict]":  # type: ignore[type-arg]
    out = []
    while True:
        payload = sw.next()
        if payload is None:
            return out
        out.append(json.loads(payload))
        sw.sent()


def test_button_and_card_start_and_stop_jobs_and_refuse_what_they_must() -> None:
    sw = _switch(MemArea(), MemArea())
    up = 10_000
    assert not sw.press(None, up)  # clock not synced: no job event
    assert sw.press(T, up)
    assert sw.job == "esp32-a1b2c3-" + str(T) and sw.card == ""
    assert not sw.press(T + 500, up + 500)  # a double press within the hold-off
    assert not sw.tap(UIDS[1], T + 5000, up + 5000)  # a card cannot stop a button's job
    assert sw.press(T + 5000, up + 5000)
    assert sw.job == ""
    up += 10_000
    assert sw.tap(UIDS[1], T + 10_000, up)
    assert not sw.tap(UIDS[0], T + 15_000, up + 5000)  # another card: not its job
    assert sw.tap(UIDS[1], T + 20_000, up + 10_000)
    assert sw.tap(UIDS[0], T + 30_000, up + 20_000)
    assert sw.press(T + 40_000, up + 30_000)  # the button stops any job, a card's too
    events = _events(sw)
    assert [(e["event"], e.get("card"), e["t"] - T) for e in events] == [
        ("start", None, 0),
        ("stop", None, 5000),
        ("start", UIDS[1], 10_000),
        ("stop", UIDS[1], 20_000),
        ("start", UIDS[0], 30_000),
        ("stop", None, 40_000),
    ]
    assert events[0]["customer"] == "" and "customer" not in events[2]
    assert all("parts" not in e for e in events)
    assert events[2]["job"] == events[3]["job"] == "esp32-a1b2c3-" + str(T + 10_000)


def test_the_running_job_and_unsent_events_survive_a_reboot_and_a_torn_write() -> None:
    area, ring_area = MemArea(), MemArea()
    sw = _switch(area, ring_area)
    sw.tap(UIDS[2], T, 0)
    sw.press(T + 5000, 5000)
    sw.tap(UIDS[2], T + 10_000, 10_000)
    assert [e["event"] for e in _events(sw)] == ["start", "stop", "start"]  # all acknowledged
    sw.press(T + 15_000, 15_000)  # stop, not sent yet
    again = _switch(area, ring_area)  # a reboot
    assert again.job == "" and len(again.ring) == 1
    sw.tap(UIDS[0], T + 20_000, 20_000)  # start, unsent: two events wait
    # A power cut while the record was being written: its newest slot is torn.
    newest = (sw._version % 2) * SIZE
    area.data[newest + 10] ^= 0xFF
    again = _switch(area, ring_area)
    assert again.job == ""  # the previous record: the stop was the last state it saved
    assert [e["event"] for e in _events(again)] == ["stop", "start"]  # the ring kept both
    clean = _switch(area, ring_area)
    assert clean.next() is None  # acknowledged events are not sent again after a reboot


def test_a_full_job_ring_refuses_starts_and_never_drops_an_event() -> None:
    sw = _switch(MemArea(), MemArea())  # 8 slots
    t = T
    for _ in range(8):
        sw.press(t, t - T)
        t += 5000
    assert len(sw.ring) == 8 and sw.job == ""  # four jobs wait for the broker
    assert not sw.press(t, t - T)  # a fifth would have no room for its stop
    assert not sw.tap(UIDS[0], t, t - T)
    assert sw.ring.dropped == 0
    sw.sent()
    sw.sent()
    assert sw.press(t, t - T) and sw.press(t + 5000, t + 5000 - T)  # room again
    assert len(sw.ring) == 8 and sw.ring.dropped == 0


def test_the_events_are_the_canonical_vectors() -> None:
    with open(VECTORS + "/index.json") as f:
        cases = [c for c in json.load(f) if c["kind"] == "job" and c.get("canonical")]
    made = 0
    for case in cases:
        with open(VECTORS + "/" + case["file"], "rb") as f:
            payload = f.read()
        doc = json.loads(payload)
        if doc.get("src", "").startswith("esp32-"):  # sent by this firmware
            made += 1
            got = encode.job_event(
                doc["event"], doc["job"], doc.get("card", ""), doc["t"], doc["src"]
            )
            assert got == payload, case["file"]
    assert made == 4


def test_a_running_job_shows_as_a_long_dark_pause_and_a_refusal_as_quick_blinks() -> None:
    for link in (0, 1, 2):
        idle = "".join("#" if led_on(t, link, False, 0) else "." for t in range(16))
        busy = "".join("#" if led_on(t, link, True, 0) else "." for t in range(16))
        assert "..." not in idle and "..." in busy
        assert busy[:4] == idle[:4]  # the link's pattern is still readable
    refused = [led_on(0, 2, False, n) for n in range(REFUSED_TICKS, 0, -1)]
    assert refused == [False, True] * (REFUSED_TICKS // 2)
