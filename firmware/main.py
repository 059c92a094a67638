"""Starts the sensor: read /config.json and /config.local.json, then run forever."""

import asyncio

from firmware import config
from firmware.app import open_sensor
from firmware.hal_esp32 import Esp32Hal


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def main() -> None:
    """Load the config, build the sensor, run it; a bad config blinks the LED forever."""
    docs = [
        (p, t)
        for p, t in (
            ("config.json", _read("/config.json")),
            ("config.local.json", _read("/config.local.json")),
        )
        if t is not None
    ]
    hal = Esp32Hal(2)
    try:
        cfg = config.parse(docs, hal.unique_id())
    except config.ConfigError as err:
        print("shopwatt: bad configuration:", err)
        asyncio.run(_blink_error(hal))
        return
    hal = Esp32Hal(cfg.led_pin)
    sensor = open_sensor(hal, cfg)
    sensor.start()
    print("shopwatt: sensor", cfg.sensor, "boot", sensor.state.boot)
    asyncio.run(sensor.run())


async def _blink_error(hal: Esp32Hal) -> None:
    # Three quick blinks and a pause: the config is wrong; fix it over USB (no reset loop).
    while True:
        for _ in range(3):
            hal.led(True)
            await asyncio.sleep(0.1)
            hal.led(False)
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)


main()
