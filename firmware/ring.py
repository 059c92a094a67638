"""The offline buffer: a bounded ring of readings in flash, replayed in order.

Readings that cannot be sent now are stored as they were encoded, so a replay is
byte-identical to the original. Each slot holds its ring index, the payload length, the
payload and a CRC32; the ring's head (first unsent index) is persisted lazily with the
counters (`state`), the tail is found again after a reboot by scanning the slots, so a
power cut loses at most the slot being written. A stale head after a power cut only
means already-sent readings are sent again, which the gateway's dedup drops.

When the ring is full the OLDEST reading is discarded to make room, and counted: recent
readings matter most for live views, and energy is never lost (counters are cumulative).
"""

import binascii
import struct

from .hal import Area

SLOT = 512
_HEAD = "<IH"  # ring index, payload length
_HEAD_LEN = 6
_CRC_LEN = 4
MAX_PAYLOAD = SLOT - _HEAD_LEN - _CRC_LEN
_U32 = 0xFFFFFFFF


class Ring:
    """A ring of `slots` readings in an Area of slots * SLOT bytes."""

    def __init__(self, area: Area, slots: int) -> None:
        self.area = area
        self.slots = slots
        self.head = 1  # index of the oldest unsent reading (see state.State.head)
        self.tail = 1  # index the next reading gets
        self.dropped = 0  # readings discarded because the ring was full
        self.corrupt = 0  # slots that failed their CRC when read back

    def __len__(self) -> int:
        return self.tail - self.head

    @property
    def lost(self) -> int:
        """Readings this ring could not deliver: discarded when full, or damaged in flash."""
        return self.dropped + self.corrupt

    def recover(self, head: int) -> None:
        """After a boot: resume from the persisted head, find the tail by scanning slots."""
        self.head = head
        top = head - 1
        for slot in range(self.slots):
            hdr = self.area.read(slot * SLOT, _HEAD_LEN)
            if len(hdr) < _HEAD_LEN:
                continue
            idx = struct.unpack(_HEAD, hdr)[0]
            # Only indexes ahead of the head and within one lap of it are live; the CRC is
            # checked when the slot is replayed.
            if head <= idx < head + self.slots and idx % self.slots == slot and idx > top:
                top = idx
        self.tail = top + 1

    def _write(self, idx: int, payload: bytes) -> None:
        rec = struct.pack(_HEAD, idx & _U32, len(payload)) + payload
        crc = binascii.crc32(rec) & _U32
        self.area.write((idx % self.slots) * SLOT, rec + struct.pack("<I", crc))

    def push(self, payload: bytes) -> None:
        """Append a reading; when full, the oldest is discarded and counted."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"reading of {len(payload)} bytes does not fit a {SLOT}-byte slot")
        if len(self) >= self.slots:
            self.head += 1
            self.dropped += 1
        self._write(self.tail, payload)
        self.tail += 1

    def unshift(self, payload: bytes) -> bool:
        """Put a reading back in front (it was older than everything here); False if full."""
        if len(self) >= self.slots:
            self.dropped += 1
            return False
        self.head -= 1
        self._write(self.head, payload)
        return True

    def peek(self) -> bytes | None:
        """The oldest unsent reading, skipping (and counting) slots that fail their check."""
        while self.head < self.tail:
            raw = self.area.read((self.head % self.slots) * SLOT, SLOT)
            if len(raw) >= _HEAD_LEN + _CRC_LEN:
                idx, n = struct.unpack(_HEAD, raw[:_HEAD_LEN])
                end = _HEAD_LEN + n
                if idx == self.head & _U32 and end + _CRC_LEN <= len(raw):
                    crc = struct.unpack("<I", raw[end : end + _CRC_LEN])[0]
                    if binascii.crc32(raw[:end]) & _U32 == crc:
                        return raw[_HEAD_LEN:end]
            self.corrupt += 1
            self.head += 1
        return None

    def pop(self) -> None:
        """Forget the oldest reading (it was acknowledged)."""
        if self.head < self.tail:
            self.head += 1
