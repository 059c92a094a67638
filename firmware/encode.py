"""Payload encoders for docs/protocol.md, built by hand: fixed key order, fixed decimals.

MicroPython's dicts do not keep insertion order and its float formatting depends on the
port (32-bit floats on the ESP32), so readings are written from integers in protocol
units. The output is byte-identical on every platform: tests compare it with the vectors
in tests/vectors/.
"""

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from collections.abc import Sequence


def fixed(value: int, decimals: int) -> str:
    """An integer count of 10**-decimals units as a decimal: fixed(-5, 1) -> '-0.5'."""
    scale = 10**decimals
    q, r = divmod(abs(value), scale)
    frac = str(r)
    return ("-" if value < 0 else "") + str(q) + "." + "0" * (decimals - len(frac)) + frac


def _channel(ma: int | None, dw: int, mwh: int) -> str:
    if ma is None:
        return "null"
    return "[" + fixed(ma, 3) + "," + fixed(dw, 1) + "," + fixed(mwh, 3) + "]"


def _opt(value: int | None) -> str:
    return "null" if value is None else str(value)


def reading(
    boot: int,
    seq: int,
    t_ms: int | None,
    up_ms: int,
    w_ms: int,
    n: int,
    vr_dv: int | None,
    ma: "Sequence[int | None]",
    dw: "Sequence[int]",
    mwh: "Sequence[int]",
    clip: int,
    lost: int,
    errors: int,
    rssi: int | None,
    heap: int | None,
) -> bytes:
    """One reading; currents in mA, power in 0.1 W, energy in mWh, voltage in 0.1 V.

    A channel whose current is None is written as null (its meter did not answer).
    """
    chans = ",".join(_channel(ma[k], dw[k], mwh[k]) for k in range(len(ma)))
    vr = "null" if vr_dv is None else fixed(vr_dv, 1)
    return (
        f'{{"v":1,"b":{boot},"s":{seq},"t":{_opt(t_ms)},"u":{up_ms},"w":{w_ms},"n":{n},'
        f'"vr":{vr},"ch":[{chans}],"c":{clip},"x":{lost},"e":{errors},'
        f'"r":{_opt(rssi)},"h":{_opt(heap)}}}'
    ).encode()


def _str(s: str) -> str:
    # Status strings are ids, versions, enum words and dotted IPv4s: no character that
    # JSON needs escaped can reach here (config validation refuses them).
    return '"' + s + '"'


def status_online(
    fw: str,
    boot: int,
    ip: str,
    rssi: int | None,
    t_ms: int | None,
    up_ms: int,
    reset: str,
    win_ms: int,
    buf: int,
    lost: int,
    cmd_bad: int,
    channels: "Sequence[tuple[str, str, str]]",
) -> bytes:
    """The retained online status; channels are (name, src, power) triples."""
    chans = ",".join(
        '{"name":' + _str(name) + ',"src":' + _str(src) + ',"power":' + _str(pw) + "}"
        for name, src, pw in channels
    )
    return (
        f'{{"v":1,"state":"online","fw":{_str(fw)},"boot":{boot},"ip":{_str(ip)},'
        f'"rssi":{_opt(rssi)},"t":{_opt(t_ms)},"up":{up_ms},"reset":{_str(reset)},'
        f'"win":{win_ms},"buf":{buf},"lost":{lost},"cmd_bad":{cmd_bad},"ch":[{chans}]}}'
    ).encode()


def status_offline(boot: int) -> bytes:
    """The last will: what the broker publishes when the sensor vanishes."""
    return ('{"v":1,"state":"offline","boot":' + str(boot) + "}").encode()


def job_event(event: str, job: str, card: str, t_ms: int, src: str) -> bytes:
    """A job event of the job button or card reader (docs/protocol.md, "Job event").

    A start without a card names no customer ("": the gateway or a person assigns one); a
    start with a card carries the card instead, for the gateway to map. A stop has no
    parts count: a button cannot count parts.
    """
    who = ',"card":' + _str(card) if card else (',"customer":""' if event == "start" else "")
    return (
        f'{{"v":1,"event":{_str(event)},"job":{_str(job)}{who},"t":{t_ms},"src":{_str(src)}}}'
    ).encode()
