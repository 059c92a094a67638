"""What must survive a reboot: boot counter, energy counters, the offline ring's head.

The record is kept in two places. RTC memory gets it after every window (no wear; it
survives soft resets and the watchdog, not power cuts). Flash gets it only when the
unsaved energy of a channel reaches `persist_wh`, or `persist_s` after the first unsaved
energy, at every boot, on a `persist`/`reboot` command, and when the ring head must be
durable: a wear-levelled set of slots in one littlefs file, written round-robin, each
with a version and a CRC32, so a torn write falls back to the previous slot. At boot the
valid record with the highest version wins, wherever it is.
"""

import binascii
import struct

from .hal import Area

MAX_CH = 4
_MAGIC = b"SWS1"
_FMT = "<4sIII" + "Q" * MAX_CH + "H" * MAX_CH  # magic, version, boot, ring head, mWh, rem
_BODY = struct.calcsize(_FMT)
SIZE = _BODY + 4  # + CRC32
_U32 = 0xFFFFFFFF


class State:
    """The persisted record."""

    def __init__(self) -> None:
        self.version = 0  # +1 at every store, RTC or flash
        self.boot = 0
        # Offline ring: first unsent index. It starts at 1, not 0: a reading put back in
        # front (Outbox.link_down) moves the head one below where it was, never more
        # (the ring must be empty before RAM is used again), and stored indexes are u32.
        self.head = 1
        self.mwh = [0] * MAX_CH
        self.rem = [0] * MAX_CH  # energy remainder, 1/36000 mWh (see energy.py)

    def encode(self) -> bytes:
        """The record with its CRC."""
        body = struct.pack(
            _FMT,
            _MAGIC,
            self.version & _U32,
            self.boot,
            self.head & _U32,
            *(self.mwh + self.rem),
        )
        return body + struct.pack("<I", binascii.crc32(body) & _U32)


def decode(raw: bytes) -> State | None:
    """A record from bytes, or None if it is missing, foreign or damaged."""
    if len(raw) < SIZE or raw[:4] != _MAGIC:
        return None
    body = raw[:_BODY]
    if binascii.crc32(body) & _U32 != struct.unpack("<I", raw[_BODY:SIZE])[0]:
        return None
    fields = struct.unpack(_FMT, body)
    st = State()
    st.version, st.boot, st.head = fields[1], fields[2], fields[3]
    st.mwh = list(fields[4 : 4 + MAX_CH])
    st.rem = list(fields[4 + MAX_CH :])
    return st


class FlashStore:
    """`slots` records round-robin in one Area; the newest valid one is the state."""

    def __init__(self, area: Area, slots: int = 8) -> None:
        self.area = area
        self.slots = slots
        self.writes = 0  # flash writes since boot
        self._next = 0  # the slot the next save goes to

    def load(self) -> State | None:
        """The valid record with the highest version, or None on a blank device."""
        best = None
        for slot in range(self.slots):
            st = decode(self.area.read(slot * SIZE, SIZE))
            if st is not None and (best is None or st.version > best.version):
                best = st
                self._next = (slot + 1) % self.slots
        return best

    def save(self, st: State) -> None:
        """Write st into the slot after the newest one (never over the newest)."""
        self.area.write(self._next * SIZE, st.encode())
        self._next = (self._next + 1) % self.slots
        self.writes += 1


def newest(*candidates: State | None) -> State:
    """The record with the highest version; a fresh State when there is none."""
    best = None
    for st in candidates:
        if st is not None and (best is None or st.version > best.version):
            best = st
    return best if best is not None else State()
