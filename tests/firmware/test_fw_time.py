# Runs under MicroPython too (tests/firmware/mpy): plain asserts, no fixtures.
"""SNTP replies and the clock: uptime across tick wrap-around, UTC after a sync."""

import struct

from firmware import ntp
from firmware.clock import Clock
from firmware.hal_fake import FakeHal


def _reply(secs: int, frac: int, first: int = 0x24, stratum: int = 2) -> bytes:
    return bytes((first, stratum)) + bytes(38) + struct.pack(">II", secs, frac)


def test_sntp_request_is_a_version_4_client_packet() -> None:
    req = ntp.request()
    assert len(req) == 48 and req[0] == 0x23


def test_sntp_reply_to_unix_milliseconds() -> None:
    # 2025-11-22 10:00:00 UTC = 1763805600 s since 1970; half a second of fraction.
    secs = 1763805600 + ntp.NTP_TO_UNIX_S
    assert ntp.parse(_reply(secs, 1 << 31), 0) == 1763805600500
    assert ntp.parse(_reply(secs, 0), 40) == 1763805600020  # half the round trip


def test_sntp_after_the_2036_era_rollover() -> None:
    # 2040-01-01 00:00:00 UTC: NTP seconds have wrapped past 2**32.
    unix = 2208988800
    assert ntp.parse(_reply(unix + ntp.NTP_TO_UNIX_S - (1 << 32), 0), 0) == unix * 1000


def test_bad_sntp_replies_are_ignored() -> None:
    secs = 1763805600 + ntp.NTP_TO_UNIX_S
    assert ntp.parse(_reply(secs, 0)[:47], 0) is None  # short
    assert ntp.parse(_reply(secs, 0, first=0x23), 0) is None  # a client packet, not a server's
    assert ntp.parse(_reply(secs, 0, first=0xE4), 0) is None  # leap 3: server not synchronised
    assert ntp.parse(_reply(secs, 0, stratum=0), 0) is None  # kiss-of-death
    assert ntp.parse(_reply(0, 0), 0) is None


class _WrappingHal(FakeHal):
    """MicroPython's ticks: 30 bits, wrapping."""

    def ticks_ms(self) -> int:
        return self.now_ms & 0x3FFFFFFF

    def ticks_diff(self, new: int, old: int) -> int:
        return ((new - old + 0x20000000) & 0x3FFFFFFF) - 0x20000000


def test_uptime_keeps_counting_across_tick_wrap_around() -> None:
    hal = _WrappingHal()
    hal.now_ms = 0x3FFFFFFF - 5000
    clock = Clock(hal)
    total = 0
    for _ in range(40):  # 40 days in steps of one day: the ticks wrap three times
        hal.now_ms += 86400000
        total += 86400000
        assert clock.uptime() == total


def test_utc_is_none_until_synced_then_follows_uptime() -> None:
    hal = FakeHal()
    clock = Clock(hal)
    hal.now_ms = 1000
    assert clock.utc(clock.uptime()) is None
    clock.sync(1763805600000)
    hal.now_ms = 11000
    assert clock.utc(clock.uptime()) == 1763805610000
    assert clock.utc(500) == 1763805599500  # an earlier uptime maps back
