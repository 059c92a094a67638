# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""The persisted record: round trip, torn writes, RTC versus flash."""

from firmware.hal_fake import MemArea
from firmware.state import SIZE, FlashStore, State, decode, newest


def _state(version: int, boot: int, mwh: int) -> State:
    st = State()
    st.version = version
    st.boot = boot
    st.head = 77
    st.mwh = [mwh, 2, 3, 2**40 + 5]
    st.rem = [35999, 0, 1, 2]
    return st


def test_record_round_trip() -> None:
    st = decode(_state(9, 4, 123456789).encode())
    assert st is not None
    assert (st.version, st.boot, st.head) == (9, 4, 77)
    assert st.mwh == [123456789, 2, 3, 2**40 + 5] and st.rem == [35999, 0, 1, 2]


def test_damaged_or_foreign_records_are_refused() -> None:
    raw = bytearray(_state(1, 1, 5).encode())
    raw[10] ^= 1
    assert decode(bytes(raw)) is None
    assert decode(b"") is None
    assert decode(bytes(SIZE)) is None  # blank RTC memory after a power cut


def test_flash_store_picks_the_newest_valid_slot() -> None:
    store = FlashStore(MemArea(), 4)
    for v in range(1, 11):
        store.save(_state(v * 3, 1, v))
    st = store.load()
    assert st is not None and st.version == 30 and st.mwh[0] == 10


def test_torn_write_falls_back_to_the_previous_record() -> None:
    area = MemArea()
    store = FlashStore(area, 4)
    store.save(_state(1, 1, 100))
    store.save(_state(2, 1, 200))
    # Power fails half-way through the third write: half a record lands.
    half = _state(3, 1, 300).encode()[: SIZE // 2]
    area.write(2 * SIZE, half)
    again = FlashStore(area, 4)
    st = again.load()
    assert st is not None and st.mwh[0] == 200
    again.save(_state(4, 1, 400))  # the next save goes after the newest, over the torn one
    assert FlashStore(area, 4).load().mwh[0] == 400  # type: ignore[union-attr]


def test_slots_are_used_round_robin() -> None:
    area = MemArea()
    store = FlashStore(area, 4)
    for v in range(1, 9):
        store.save(_state(v, 1, v))
    versions = sorted(decode(area.read(i * SIZE, SIZE)).version for i in range(4))  # type: ignore[union-attr]
    assert versions == [5, 6, 7, 8]


def test_newest_prefers_rtc_after_a_soft_reset_and_flash_after_a_power_cut() -> None:
    flash = _state(10, 3, 1000)
    rtc = _state(25, 3, 1040)
    assert newest(flash, rtc) is rtc
    assert newest(flash, None) is flash
    assert newest(None, None).boot == 0
