"""Sensor configuration: one defaults dict, overridden by config.json, then config.local.json.

config.local.json holds the secrets (Wi-Fi and MQTT passwords) and is never committed.
Everything is validated once at start; an error names the key and the bad value.
"""

import json

from .meter_maps import MAPS

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from typing import Any, NoReturn

ADC1_PINS = (32, 33, 34, 35, 36, 39)  # ADC2 cannot be read while Wi-Fi is on
# GPIOs that can drive an output and have an internal pull-up: not 6-11 (the module's
# flash), not 34-39 (input only, no pull-up).
OUT_PINS = (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27, 32, 33)
IN_PINS = OUT_PINS + (34, 35, 36, 39)  # noqa: RUF005 - MicroPython has no (*a, b)
MAX_CT = 3
METER_TYPES = tuple(sorted(MAPS))  # the meters with a register table (meter_maps.py)

DEFAULTS = {
    "site": "",
    "machine": "",
    "sensor": "",  # empty: "esp32-" + the chip's MAC
    "wifi": {"ssid": "", "password": ""},
    "mqtt": {"host": "", "port": 1883, "user": None, "password": None, "keepalive_s": 60},
    "ntp": {"host": "pool.ntp.org", "resync_s": 3600},
    "window_ms": 10000,
    "burst": 200,  # sample sets per burst: the longest stretch the network waits for
    "nominal_v": 230.0,
    "pf": 1.0,
    "voltage": None,
    "channels": [],
    "meter": None,
    "buffer_slots": 2048,
    "persist_wh": 100.0,
    "persist_s": 3600,
    "status_s": 600,
    "wdt_ms": 60000,
    "led_pin": 2,
    "button": None,
    "card_reader": None,
}
_CHANNEL = {
    "name": None,
    "pin": None,
    "amps_per_volt": None,
    "gain": 1.0,
    "phase": 1.0,
    "floor_a": 0.0,
    "invert": False,
}
_VOLTAGE = {"pin": None, "volts_per_volt": None, "gain": 1.0}
_METER = {
    "name": "meter",
    "type": None,
    "addr": 1,
    "uart": 2,
    "tx": 17,
    "rx": 16,
    "baud": 9600,
    "timeout_ms": 300,
    "poll_ms": 2000,
}

_BUTTON = {"pin": None, "debounce_ms": 30}
# VSPI's usual pins; rst null: the board's RST is tied high.
_READER = {
    "type": "mfrc522",
    "spi": 2,
    "sck": 18,
    "mosi": 23,
    "miso": 19,
    "cs": 5,
    "rst": None,
    "poll_ms": 200,
}


_METER_RANGES = (
    ("addr", 1, 247),
    ("uart", 1, 2),
    ("baud", 1200, 115200),
    ("timeout_ms", 20, 5000),
    ("poll_ms", 200, 3600000),
)


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the value."""


def _fail(key: str, value: object, why: str) -> "NoReturn":
    raise ConfigError(f"{key} = {json.dumps(value)}: {why}")


def merge(base: "dict[str, Any]", override: "dict[str, Any]", prefix: str = "") -> "dict[str, Any]":
    """base with override applied key by key (nested dicts merged); unknown keys refused."""
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            _fail(prefix + key, value, "unknown key (check the spelling)")
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = merge(base[key], value, prefix + key + ".")
        else:
            out[key] = value
    return out


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ID_CHARS = _ALNUM + "_.-"


def is_id(s: object, longest: int = 64) -> bool:
    """True for ids that fit MQTT topics: 1..longest of A-Z a-z 0-9 _ . -, alnum first."""
    if not isinstance(s, str) or not 0 < len(s) <= longest or s[0] not in _ALNUM:
        return False
    return all(c in _ID_CHARS for c in s)


def _section(item: object, defaults: "dict[str, Any]", path: str) -> "dict[str, Any]":
    """One config object merged over its defaults, or an error naming path."""
    if not isinstance(item, dict):
        _fail(path, item, "expected an object")
    return merge(defaults, item, path + ".")


def _num(
    cfg: "dict[str, Any]", key: str, lo: float, hi: float, path: str = "", whole: bool = False
) -> None:
    v = cfg[key]
    ok = isinstance(v, int) if whole else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or not lo <= v <= hi:
        _fail(
            path + key,
            v,
            "expected {} from {} to {}".format("an integer" if whole else "a number", lo, hi),
        )


class Config:
    """The validated configuration (attributes mirror the keys)."""

    def __init__(self, raw: "dict[str, Any]", unique_id: str) -> None:
        for key in ("site", "machine"):
            if not is_id(raw[key]):
                _fail(
                    key,
                    raw[key],
                    "expected an id: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
                )
        self.site: str = raw["site"]
        self.machine: str = raw["machine"]
        self.sensor: str = raw["sensor"] or "esp32-" + unique_id
        if not is_id(self.sensor):
            _fail("sensor", raw["sensor"], "expected an id like the site's")
        wifi, mqtt, ntp = raw["wifi"], raw["mqtt"], raw["ntp"]
        if not isinstance(wifi["ssid"], str) or not wifi["ssid"]:
            _fail("wifi.ssid", wifi["ssid"], "required (put it in config.local.json)")
        if not isinstance(mqtt["host"], str) or not mqtt["host"]:
            _fail("mqtt.host", mqtt["host"], "required: the gateway's IP address")
        _num(mqtt, "port", 1, 65535, "mqtt.", whole=True)
        _num(mqtt, "keepalive_s", 10, 600, "mqtt.", whole=True)
        _num(ntp, "resync_s", 60, 86400, "ntp.", whole=True)
        self.wifi_ssid: str = wifi["ssid"]
        self.wifi_password: str = wifi["password"] or ""
        self.mqtt_host: str = mqtt["host"]
        self.mqtt_port: int = mqtt["port"]
        self.mqtt_user: str | None = mqtt["user"]
        self.mqtt_password: str | None = mqtt["password"]
        self.keepalive_s: int = mqtt["keepalive_s"]
        self.ntp_host: str = ntp["host"]
        self.ntp_resync_s: int = ntp["resync_s"]
        _num(raw, "window_ms", 1000, 3600000, whole=True)
        _num(raw, "burst", 10, 5000, whole=True)
        _num(raw, "nominal_v", 1, 1000)
        _num(raw, "pf", 0.01, 1)
        _num(raw, "buffer_slots", 16, 65536, whole=True)
        _num(raw, "persist_wh", 0.001, 100000)
        _num(raw, "persist_s", 60, 86400 * 7, whole=True)
        _num(raw, "status_s", 10, 86400, whole=True)
        _num(raw, "wdt_ms", 10000, 600000, whole=True)
        self.window_ms: int = raw["window_ms"]
        self.burst: int = raw["burst"]
        self.nominal_v: float = raw["nominal_v"]
        self.pf: float = raw["pf"]
        self.buffer_slots: int = raw["buffer_slots"]
        self.persist_mwh: int = int(raw["persist_wh"] * 1000)
        self.persist_s: int = raw["persist_s"]
        self.status_s: int = raw["status_s"]
        self.wdt_ms: int = raw["wdt_ms"]
        self.led_pin: int | None = raw["led_pin"]
        self.channels = self._channels(raw["channels"])
        self.voltage = None if raw["voltage"] is None else self._voltage(raw["voltage"])
        self.meter = None if raw["meter"] is None else self._meter(raw["meter"])
        self.button = None if raw["button"] is None else _section(raw["button"], _BUTTON, "button")
        self.card_reader = None if raw["card_reader"] is None else self._reader(raw["card_reader"])
        self._digital_pins()
        used = [c["pin"] for c in self.channels] + ([self.voltage["pin"]] if self.voltage else [])
        for pin in used:
            if used.count(pin) > 1:
                _fail("channels", used, f"pin {pin} is used twice")
        if not self.channels and self.meter is None:
            _fail("channels", raw["channels"], "configure at least one CT channel or a meter")

    def _digital_pins(self) -> None:
        """The button's and the reader's pins: the right kind, and each used once."""
        taken: list[tuple[str, object]] = [("led_pin", self.led_pin)]
        taken += [(f"channels[{i}].pin", c["pin"]) for i, c in enumerate(self.channels)]
        if self.voltage is not None:
            taken.append(("voltage.pin", self.voltage["pin"]))
        if self.meter is not None:
            taken += [("meter.tx", self.meter["tx"]), ("meter.rx", self.meter["rx"])]
        wanted: list[tuple[str, object, tuple[int, ...]]] = []
        if self.button is not None:
            wanted.append(("button.pin", self.button["pin"], OUT_PINS))
            _num(self.button, "debounce_ms", 5, 500, "button.", whole=True)
        r = self.card_reader
        if r is not None:
            wanted += [("card_reader." + k, r[k], OUT_PINS) for k in ("sck", "mosi", "cs")]
            wanted.append(("card_reader.miso", r["miso"], IN_PINS))
            if r["rst"] is not None:
                wanted.append(("card_reader.rst", r["rst"], OUT_PINS))
        for key, pin, allowed in wanted:
            if isinstance(pin, bool) or pin not in allowed:
                _fail(key, pin, f"expected a GPIO from {allowed}")
            for other, used in taken:
                if used == pin:
                    _fail(key, pin, "pin already used by " + other)
            taken.append((key, pin))

    def _reader(self, item: object) -> "dict[str, Any]":
        r = _section(item, _READER, "card_reader")
        if r["type"] != "mfrc522":
            _fail("card_reader.type", r["type"], 'expected "mfrc522"')
        _num(r, "spi", 1, 2, "card_reader.", whole=True)
        _num(r, "poll_ms", 50, 5000, "card_reader.", whole=True)
        return r

    def _channels(self, items: object) -> "list[dict[str, Any]]":
        if not isinstance(items, list) or len(items) > MAX_CT:
            _fail("channels", items, f"expected a list of at most {MAX_CT} CT channels")
        out = []
        for i, item in enumerate(items):
            path = f"channels[{i}]"
            ch = _section(item, _CHANNEL, path)
            if not is_id(ch["name"], 32):
                _fail(path + ".name", ch["name"], "expected an id of at most 32 characters")
            if ch["pin"] not in ADC1_PINS:
                _fail(path + ".pin", ch["pin"], f"not an ADC1 pin {ADC1_PINS}")
            _num(ch, "amps_per_volt", 0.001, 100000, path + ".")
            _num(ch, "gain", 0.5, 2, path + ".")
            _num(ch, "phase", -1, 3, path + ".")
            _num(ch, "floor_a", 0, 100, path + ".")
            if not isinstance(ch["invert"], bool):
                _fail(path + ".invert", ch["invert"], "expected true or false")
            out.append(ch)
        return out

    def _voltage(self, item: object) -> "dict[str, Any]":
        v = _section(item, _VOLTAGE, "voltage")
        if v["pin"] not in ADC1_PINS:
            _fail("voltage.pin", v["pin"], f"not an ADC1 pin {ADC1_PINS}")
        _num(v, "volts_per_volt", 1, 100000, "voltage.")
        _num(v, "gain", 0.5, 2, "voltage.")
        return v

    def _meter(self, item: object) -> "dict[str, Any]":
        m = _section(item, _METER, "meter")
        if m["type"] not in METER_TYPES:
            _fail("meter.type", m["type"], f"expected one of {METER_TYPES}")
        if not is_id(m["name"], 32):
            _fail("meter.name", m["name"], "expected an id of at most 32 characters")
        for key, lo, hi in _METER_RANGES:
            _num(m, key, lo, hi, "meter.", whole=True)
        return m


def parse(docs: "list[tuple[str, str]]", unique_id: str) -> Config:
    """Validate the defaults overridden by each (file name, JSON text) in order."""
    raw = DEFAULTS
    for name, text in docs:
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError(name + ": not valid JSON") from None
        if not isinstance(doc, dict):
            raise ConfigError(name + ": expected a JSON object")
        try:
            raw = merge(raw, doc)
        except ConfigError as err:
            raise ConfigError(name + ": " + str(err)) from None
    try:
        return Config(raw, unique_id)
    except ConfigError as err:
        raise ConfigError("/".join(n for n, _ in docs) + ": " + str(err)) from None
