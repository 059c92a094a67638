"""SNTP (RFC 4330) packets: the request and the parsing of the answer; no socket here."""

import struct

NTP_TO_UNIX_S = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_ERA = 1 << 32


def request() -> bytes:
    """A 48-byte client request: LI 0, version 4, mode 3 (client)."""
    return b"\x23" + bytes(47)


def parse(reply: bytes, rtt_ms: int) -> int | None:
    """UTC ms from a server reply (its transmit time + half the round trip), or None."""
    if len(reply) < 48:
        return None
    first, stratum = reply[0], reply[1]
    if first & 0x07 != 4 or first >> 6 == 3 or not 1 <= stratum <= 15:
        return None  # not a server reply, server unsynchronised, or a kiss-of-death
    secs, frac = struct.unpack(">II", reply[40:48])
    if secs == 0:
        return None
    if secs < 0x80000000:
        secs += _ERA  # NTP era 1 starts in February 2036
    utc_ms: int = (secs - NTP_TO_UNIX_S) * 1000 + ((frac * 1000) >> 32) + rtt_ms // 2
    return utc_ms
