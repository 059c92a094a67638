"""The machine's job at the sensor: a push button and a card reader start and stop it.

- A press of the job button starts a job, the next press stops it.
- A card tap starts a job carrying the card's UID; the same card again, or the button,
  stops it. Another card while a job runs is refused: nobody ends someone else's job with
  their own card (the button can).
- No job event without a synced clock (docs/protocol.md): a press or tap before the first
  time sync is refused, as is one within HOLDOFF_MS of the last accepted one (a double
  press would start and stop at once).
- The running job survives reboots and power cuts: it is saved to flash at every start and
  stop, in two alternating slots with a version and a CRC (a torn write falls back to the
  other), with the head of the job events' own offline ring.

Job events wait in their own ring in flash (JOB_SLOTS events: days of presses, never
pushed out by a long outage's readings) until the broker acknowledges them, oldest first.
The ring never drops one: a start that would leave no room for its stop is refused.
Refusals show on the LED (see led_on).
"""

import binascii
import struct

from . import encode
from .hal import Area
from .ring import Ring

HOLDOFF_MS = 2000
JOB_SLOTS = 64
_MAGIC = b"SWJ1"
_FMT = "<4sII64s20s"  # magic, version, job ring head, running job id, its card
_BODY = struct.calcsize(_FMT)
SIZE = _BODY + 4  # + CRC32
_U32 = 0xFFFFFFFF


class Debounce:
    """A polled push button: one press per push, however much its contacts bounce."""

    def __init__(self, stable_ms: int) -> None:
        self.stable_ms = stable_ms
        self._raw = False
        self._since = 0
        self._level = False  # the debounced state

    def feed(self, pressed: bool, now_ms: int) -> bool:
        """True once per push: when the pressed level has held for stable_ms."""
        if pressed != self._raw:
            self._raw = pressed
            self._since = now_ms
            return False
        if pressed != self._level and now_ms - self._since >= self.stable_ms:
            self._level = pressed
            return pressed
        return False


class TapWatch:
    """Card reads -> taps: a card counts when it arrives, not for as long as it lies there.

    A card counts as gone only after gone_ms without a read: the reader misses a card
    near the edge of its field now and then, and that must not read as a second tap.
    """

    def __init__(self, gone_ms: int) -> None:
        self.gone_ms = gone_ms
        self._card: str | None = None
        self._seen = 0

    def feed(self, card: str | None, now_ms: int) -> str | None:
        """The card of a new tap, else None; card is this poll's read (None: no card)."""
        if card is None:
            if self._card is not None and now_ms - self._seen >= self.gone_ms:
                self._card = None
            return None
        new = card != self._card
        self._card = card
        self._seen = now_ms
        return card if new else None


class JobSwitch:
    """The running job (or none) of this sensor's machine, and the events not yet sent."""

    def __init__(self, area: Area, ring: Ring, src: str) -> None:
        self.area = area
        self.ring = ring
        self.src = src  # the sensor id: the event's src, and the start of every job id
        self.job = ""  # the running job's id; "" when none runs
        self.card = ""  # the card that started it; "" for the button
        self.head = 1  # the job ring's head (first unsent event), saved with the job
        self._version = 0
        self._last_up: int | None = None  # uptime of the last accepted press or tap

    def load(self) -> None:
        """Restore the newest valid record (a blank device: no job running) and the ring."""
        for slot in range(2):
            raw = self.area.read(slot * SIZE, SIZE)
            if len(raw) < SIZE or raw[:4] != _MAGIC:
                continue
            if binascii.crc32(raw[:_BODY]) & _U32 != struct.unpack("<I", raw[_BODY:SIZE])[0]:
                continue
            _, version, head, job, card = struct.unpack(_FMT, raw[:_BODY])
            if version >= self._version:
                self._version, self.head = version, head
                self.job = job.rstrip(b"\x00").decode()
                self.card = card.rstrip(b"\x00").decode()
        self.ring.recover(self.head)

    def save(self) -> None:
        """Write the record over the older of the two slots."""
        self._version += 1
        self.head = self.ring.head
        body = struct.pack(
            _FMT, _MAGIC, self._version, self.head & _U32, self.job.encode(), self.card.encode()
        )
        crc = struct.pack("<I", binascii.crc32(body) & _U32)
        self.area.write((self._version % 2) * SIZE, body + crc)

    def _ready(self, up_ms: int) -> bool:
        """True (and the hold-off restarts) unless the last accepted event is too recent."""
        last = self._last_up
        if last is not None and up_ms - last < HOLDOFF_MS:
            return False
        self._last_up = up_ms
        return True

    def _full(self) -> bool:
        """No room for a start and its stop in the ring (the broker unreachable for days)."""
        return not self.job and len(self.ring) > self.ring.slots - 2

    def press(self, t_ms: int | None, up_ms: int) -> bool:
        """The job button was pressed: start or stop; False when refused."""
        if t_ms is None or self._full() or not self._ready(up_ms):
            return False
        self._toggle(t_ms, "")
        return True

    def tap(self, card: str, t_ms: int | None, up_ms: int) -> bool:
        """A card was tapped: start, or stop its own job; False when refused."""
        if self.job and self.card != card:
            return False
        if t_ms is None or self._full() or not self._ready(up_ms):
            return False
        self._toggle(t_ms, card)
        return True

    def next(self) -> bytes | None:
        """The oldest job event not yet acknowledged."""
        return self.ring.peek()

    def sent(self) -> None:
        """The event from next() was acknowledged: forget it (durably)."""
        self.ring.pop()
        self.save()

    def _toggle(self, t_ms: int, card: str) -> None:
        """Queue the start or stop event, then save the new state (the event first: after
        a power cut in between, the event is sent and the state is one press behind)."""
        if self.job:
            event = encode.job_event("stop", self.job, card, t_ms, self.src)
            self.job = self.card = ""
        else:
            # The id is unique per machine: one sensor per machine, one start per ms.
            self.job = self.src[:48] + "-" + str(t_ms)
            self.card = card
            event = encode.job_event("start", self.job, card, t_ms, self.src)
        self.ring.push(event)
        self.save()


# The status LED over a 2 s cycle of 8 quarter-second ticks ("#" on, "." off), by link
# (0: no Wi-Fi, 1: Wi-Fi but no broker, 2: connected) and whether a job runs: a running
# job adds a dark pause of 0.75 s, longer than any pause of the link patterns.
_LED = (
    ("#.#.#.#.", "#.#.#..."),
    ("##..##..", "##..#..."),
    ("########", "#####..."),
)
REFUSED_TICKS = 6  # a refused press or tap: three quick blinks, whatever else is shown


def led_on(tick: int, link: int, running: bool, refused: int) -> bool:
    """The LED at this tick; refused: ticks of the refusal blinks still to show."""
    if refused > 0:
        return refused % 2 == 1
    return _LED[link][1 if running else 0][tick % 8] == "#"
