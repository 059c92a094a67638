"""Per-sensor bookkeeping of the MQTT input: dedup, time placement, the gateway counter.

- **Dedup** on (sensor, boot, seq): per sensor, the highest seq of the current boot and a
  bit per seq for the WINDOW seqs below it (and the same for the previous boot, so a
  redelivery that arrives after the sensor rebooted is still recognised). A reading more
  than WINDOW seqs below the highest one is taken for a duplicate: the protocol delivers a
  sensor's readings in order, so only a redelivery can be that far behind.
- **Placement**: a reading without a synced clock (t = null) is placed at t0 - u0 + u,
  with (t0, u0) from a synced reading of the same boot. Until one arrives it is parked in
  the sensor's state (persisted like the rest, so it is acknowledged and safe); a boot
  that ends without ever syncing drops its parked readings, counted `unsynced` (their
  energy is not lost: the gateway counter carries it into the next boot's first reading).
- **Gateway counter**: the protocol allows counter differences only within one boot, and
  a meter channel may wrap. Each channel gets a counter that never goes back: within a
  boot it is the sensor's counter plus an offset; at a boot change (or a decrease, i.e. a
  meter wrap) it continues from its last value by the window's p * w, and the offset is
  set anew. The machine's `wh` is the sum of its channels' gateway counters, so the
  engine can difference it like any meter, across reboots and restarts of the gateway.

The state is plain data: `dump()` gives JSON per sensor, written in the same ledger
transaction as the readings it produced, so after a crash state and ledger always agree.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.engine.model import Reading
from gateway.inputs.protocol import SensorReading

WINDOW = 1024  # seqs below the newest one remembered exactly (2.8 h at 10 s windows)
MAX_PARKED = 2048  # unsynced readings kept per sensor: a full offline buffer of the firmware
_MASK = (1 << WINDOW) - 1
_MS_PER_H = 3_600_000

# What happens to a reading (the per-sensor counters; docs/gateway.md explains each).
READING = "readings"  # accepted: placed and fed to the ledger (late ones included)
DUPLICATE = "duplicates"  # same (boot, seq) seen before: QoS 1 redelivery or a replay
LATE = "late"  # new, but older than the newest seq of its boot (fills a gap)
OLD_BOOT = "old_boot"  # of an earlier boot, arriving after the sensor's newer boot
UNSYNCED = "unsynced"  # its boot never had a synced reading to place it by: dropped
STALE = "stale"  # a summed channel is null (meter did not answer) or missing
COUNTER_RESETS = "counter_resets"  # a channel counter went down within a boot (meter wrap)
BOOTS = "boots"  # boot changes seen (the first reading of a sensor is not one)
MISSING = "missing"  # seqs skipped that the sensor did not report as discarded (x)
DISCARDED = "sensor_discarded"  # readings the sensor dropped from its full offline buffer
COUNTERS = (
    *(READING, DUPLICATE, LATE, OLD_BOOT, UNSYNCED, STALE),
    *(COUNTER_RESETS, BOOTS, MISSING, DISCARDED),
)


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """A configured sensor: its machine and the channels summed into the machine's energy."""

    machine: str
    channels: tuple[int, ...]  # empty: all channels of the reading
    source: str  # Reading.source: "mqtt:<sensor>"


@dataclass
class SensorState:
    """What the tracker remembers of one sensor (persisted as JSON)."""

    boot: int = 0  # 0: never seen
    seq: int = -1  # highest seq seen in `boot`
    seen: int = 0  # bit k: seq - k was seen
    x: int = 0  # the sensor's discarded-readings counter at `seq`
    prev_boot: int = 0
    prev_seq: int = -1
    prev_seen: int = 0
    anchor: int | None = None  # t - u of a synced reading of `boot`
    # Per channel position: [last raw counter Wh, offset Wh, boot of that raw counter].
    channels: list[list[float] | None] = field(default_factory=list)
    parked: list[list[float]] = field(default_factory=list)  # [u, watts, wh] waiting for t

    def dumps(self) -> str:
        """Compact JSON (bit masks as hex)."""
        return json.dumps(
            [
                self.boot,
                self.seq,
                _mask_text(self.seen),
                self.x,
                self.prev_boot,
                self.prev_seq,
                _mask_text(self.prev_seen),
                self.anchor,
                self.channels,
                self.parked,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> SensorState:
        """The inverse of dumps()."""
        b, s, seen, x, pb, ps, pseen, anchor, channels, parked = json.loads(text)
        return cls(b, s, _mask(seen), x, pb, ps, _mask(pseen), anchor, channels, parked)


def _mask_text(mask: int) -> str:
    """Hex, or "~" and the hex of the unseen bits when shorter.

    A sensor that sends in order has all WINDOW bits set: "~0" instead of 256 digits,
    written with every batch (SD-card wear).
    """
    plain, unseen = f"{mask:x}", f"~{~mask & _MASK:x}"
    return unseen if len(unseen) < len(plain) else plain


def _mask(text: str) -> int:
    """The inverse of _mask_text (plain hex: the format of earlier versions)."""
    return ~int(text[1:], 16) & _MASK if text.startswith("~") else int(text, 16)


class Tracker:
    """Turns decoded readings of configured sensors into machine readings, exactly once."""

    def __init__(self, sensors: Mapping[str, SensorSpec]) -> None:
        self.sensors = dict(sensors)
        self.states: dict[str, SensorState] = {}
        self.counts: dict[str, Counter[str]] = {s: Counter() for s in self.sensors}
        self.dirty: set[str] = set()  # sensors whose state changed since the last dump()

    def load(self, rows: Iterable[tuple[str, str]]) -> None:
        """Restore persisted states (sensor, JSON); sensors no longer configured are ignored."""
        for sensor, text in rows:
            if sensor in self.sensors:
                self.states[sensor] = SensorState.loads(text)

    def dump(self) -> list[tuple[str, str]]:
        """(sensor, JSON) of the states changed since the last dump."""
        rows = [(s, self.states[s].dumps()) for s in sorted(self.dirty)]
        self.dirty.clear()
        return rows

    def process(self, items: Sequence[tuple[str, SensorReading]]) -> list[Reading]:
        """Readings of one batch, in arrival order -> the machine readings to store."""
        out: list[Reading] = []
        for sensor, r in items:
            self._one(sensor, r, out)
        return out

    def _one(self, sensor: str, r: SensorReading, out: list[Reading]) -> None:
        spec, count = self.sensors[sensor], self.counts[sensor]
        st = self.states.get(sensor)
        if st is None:
            st = self.states[sensor] = SensorState()
        verdict = _mark(st, r, count)
        if verdict in (DUPLICATE, OLD_BOOT):
            count[verdict] += 1
            return
        self.dirty.add(sensor)
        if verdict == LATE:
            count[LATE] += 1
        gc = _gateway_counters(st, r, advance=verdict == READING, count=count)
        if r.t is not None:
            st.anchor = r.t - r.u  # the newest offset: follows the sensor's clock corrections
            for u, watts, wh in st.parked:
                out.append(
                    Reading(spec.machine, sensor, int(st.anchor + u), watts, wh, source=spec.source)
                )
            count[READING] += len(st.parked)
            st.parked = []
        watts = wh = 0.0
        for i in spec.channels or range(len(r.ch)):
            ch = r.ch[i] if i < len(r.ch) else None
            if ch is None:
                count[STALE] += 1
                return
            watts += ch[1]
            wh += gc[i]
        if st.anchor is not None:
            out.append(
                Reading(spec.machine, sensor, st.anchor + r.u, watts, wh, source=spec.source)
            )
            count[READING] += 1
        elif len(st.parked) < MAX_PARKED:
            st.parked.append([r.u, watts, wh])
        else:
            count[UNSYNCED] += 1


def _mark(st: SensorState, r: SensorReading, count: Counter[str]) -> str:
    """Record (boot, seq) as seen; READING (newest), LATE, DUPLICATE or OLD_BOOT."""
    if r.b > st.boot:
        if st.boot:
            count[BOOTS] += 1
        st.prev_boot, st.prev_seq, st.prev_seen = st.boot, st.seq, st.seen
        st.boot, st.seq, st.seen, st.x, st.anchor = r.b, r.s, 1, r.x, None
        count[UNSYNCED] += len(st.parked)  # the boot never synced its clock: no time for them
        st.parked = []
        return READING
    if r.b == st.boot:
        k = st.seq - r.s
        if k < 0:
            gap, dropped = -k - 1, max(0, r.x - st.x)
            count[DISCARDED] += dropped
            count[MISSING] += max(0, gap - dropped)
            st.seq, st.x = r.s, max(st.x, r.x)
            st.seen = ((st.seen << -k) | 1) & _MASK
            return READING
        if k < WINDOW and not (st.seen >> k) & 1:
            st.seen |= 1 << k
            if count[MISSING]:
                count[MISSING] -= 1  # it was counted missing when a newer one arrived
            return LATE
        return DUPLICATE
    if r.b == st.prev_boot:
        k = st.prev_seq - r.s
        if k >= WINDOW or (k >= 0 and (st.prev_seen >> k) & 1):
            return DUPLICATE
    return OLD_BOOT


def _gateway_counters(
    st: SensorState, r: SensorReading, advance: bool, count: Counter[str]
) -> list[float]:
    """Each channel's gateway counter for this reading (NaN where the channel is null).

    `advance`: the reading is the newest of its boot, so its raw counters become the
    reference; a late reading is only placed on the current offsets.
    """
    while len(st.channels) < len(r.ch):
        st.channels.append(None)
    out = []
    for i, ch in enumerate(r.ch):
        if ch is None:
            out.append(float("nan"))
            continue
        wh = ch[2]
        c = st.channels[i]
        if c is not None and c[2] == r.b and (wh >= c[0] or not advance):
            if advance:
                c[0] = wh
            out.append(wh + c[1])
            continue
        # First value of the channel, of this boot, or a decrease (meter wrap): continue
        # from the last gateway counter by this window's energy (negative power adds none).
        last = 0.0 if c is None else c[0] + c[1]
        if c is not None and c[2] == r.b:
            count[COUNTER_RESETS] += 1
        window_wh = max(ch[1], 0.0) * r.w / _MS_PER_H
        if advance:
            st.channels[i] = [wh, last + window_wh - wh, r.b]
        out.append(last + window_wh)
    return out
