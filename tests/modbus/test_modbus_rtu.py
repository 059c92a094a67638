"""Modbus RTU: several meters on one serial line (a socat pty pair), one of them failing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.constants import ExcCodes

from agent.modbus_meter import SILENT, MeterServer, Rtu, SimulatedMeter, in_map_units
from gateway.inputs.modbus import ModbusInput
from gateway.meters.maps import load_map, map_path
from tests.modbus.modbus_helpers import (
    FAST,
    Collector,
    SocatPtyPair,
    fresh,
    shop_with_meters,
    stale,
)

pytestmark = pytest.mark.services


@pytest.fixture
def sink() -> Collector:
    return Collector()


@pytest.fixture
def line(rs485: SocatPtyPair) -> Iterator[tuple[list[SimulatedMeter], str]]:
    """Three meters on one RS485 line: 1 a PZEM, 2 an SDM120, 3 an EM24."""
    maps = {m: load_map(map_path(m, Path.cwd())) for m in ("pzem004t", "sdm120", "em24")}
    meters = [
        SimulatedMeter(i, mm, lambda mm=mm, i=i: in_map_units(mm, 100.0 * i, 1000.0 * i))
        for i, mm in enumerate(maps.values(), start=1)
    ]
    with MeterServer(meters, Rtu(str(rs485.meter_end), baudrate=19200)):
        yield meters, str(rs485.gateway_end)


def _rtu(meter_id: str, model: str, device: str, device_id: int) -> dict[str, Any]:
    return {
        "id": meter_id,
        "model": model,
        "transport": "rtu",
        "port": device,
        "baudrate": 19200,
        "device_id": device_id,
        **FAST,
    }


def test_a_dead_and_a_refusing_meter_do_not_stop_the_third_on_the_same_line(
    tmp_path: Path, line: tuple[list[SimulatedMeter], str], sink: Collector
) -> None:
    meters, device = line
    meters[1].fault = SILENT  # unpowered SDM120: never answers
    meters[2].fault = ExcCodes.ILLEGAL_ADDRESS  # EM24 that refuses the read
    cfg = shop_with_meters(
        tmp_path,
        {
            "press": [_rtu("press-pzem", "pzem004t", device, 1)],
            "saw": [_rtu("saw-sdm", "sdm120", device, 2)],
            "mill": [_rtu("mill-em24", "em24", device, 3)],
        },
    )
    inp = ModbusInput.from_config(cfg)
    inp.start(sink)
    try:
        sink.wait_for(
            "the PZEM's readings while the others fail",
            lambda rs: (
                fresh("press-pzem", 15)(rs)
                and stale("saw-sdm", 3)(rs)
                and stale("mill-em24", 3)(rs)
            ),
        )
    finally:
        inp.stop()
    stats = inp.stats()
    pzem, sdm, em24 = (stats[f"modbus:rtu:{device}/{i}"] for i in (1, 2, 3))
    assert pzem["readings"] >= 15 and pzem["transport_errors"] == pzem["exception_replies"] == 0
    # The dead meter: timeouts only, and each poll gave up after retries + 1 requests.
    assert sdm["transport_errors"] == sdm["requests"] == 2 * sdm["polls"] > 0
    assert sdm["exception_replies"] == sdm["readings"] == 0
    # The refusing meter: exception replies only, counted apart from transport errors.
    assert em24["exception_replies"] == em24["requests"] == em24["polls"] > 0
    assert em24["transport_errors"] == em24["readings"] == 0
    good = next(r for r in sink.of("press-pzem") if not r.stale)
    assert (good.machine, good.watts, good.wh) == ("press", pytest.approx(100.0), 1000.0)


def test_a_meter_coming_back_on_the_line_delivers_fresh_readings_again(
    tmp_path: Path, line: tuple[list[SimulatedMeter], str], sink: Collector
) -> None:
    meters, device = line
    meters[1].fault = SILENT
    cfg = shop_with_meters(
        tmp_path,
        {"press": [_rtu("pz", "pzem004t", device, 1)], "saw": [_rtu("sdm", "sdm120", device, 2)]},
    )
    inp = ModbusInput.from_config(cfg)
    inp.start(sink)
    try:
        sink.wait_for("the SDM120 to be stale", stale("sdm", 2))
        meters[1].fault = None
        sink.wait_for("the SDM120 to answer again", fresh("sdm", 1))
    finally:
        inp.stop()
    back = next(r for r in sink.of("sdm") if not r.stale)
    # The SDM120 holds kWh: 2.0 kWh on the wire, 2000 Wh in the reading.
    assert (back.watts, back.wh) == (pytest.approx(200.0), pytest.approx(2000.0))
    assert inp.stats()[f"modbus:rtu:{device}/2"]["consecutive_failures"] == 0
