"""A simulated Modbus power meter: a real pymodbus server that serves a register map.

Each `SimulatedMeter` answers with the registers its map (gateway/meters/*.toml) defines,
filled on every request from a `values` callback (numbers in the map's units), so the
virtual shop can drive it from a machine profile and tests can drive it from a dict.
Several meters behind one `MeterServer` share one TCP port or one serial line, like
devices on an RS485 bus. A meter can be told to fail: never answer (`SILENT`), or answer
every request with a Modbus exception code.

Run one by hand: `python -m agent.modbus_meter sdm630 --tcp 127.0.0.1:5020 --watts 1500`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, Self

import click
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.meters.maps import Function, MeterMap, load_map, map_path
from gateway.meters.registers import encode

Values = Callable[[], Mapping[str, float]]  # {value name: number in the value's unit}
SILENT: Literal["silent"] = "silent"  # the device never answers (unpowered, wrong id, cut wire)
Fault = ExcCodes | Literal["silent"] | None
_FUNCTION_OF_CODE: dict[int, Function] = {3: "holding", 4: "input"}


@dataclass
class SimulatedMeter:
    """One meter on the simulated bus; `fault` may be changed while the server runs."""

    device_id: int
    meter_map: MeterMap
    values: Values
    fault: Fault = None


@dataclass(frozen=True, slots=True)
class Tcp:
    """Serve Modbus TCP on host:port."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Rtu:
    """Serve Modbus RTU on a serial device (a USB adapter, or one end of a socat pty pair)."""

    device: str
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1


@dataclass
class MeterServer:
    """A pymodbus server for one or more simulated meters, on its own thread and loop."""

    meters: Sequence[SimulatedMeter]
    endpoint: Tcp | Rtu
    requests: Counter[int] = field(default_factory=Counter)  # PDUs received, by device id
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def start(self, timeout_s: float = 10.0) -> Self:
        """Start serving; returns once the server listens (raises if it cannot)."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"simulated meter server on {self.endpoint} did not start")
        if self._error is not None:
            raise RuntimeError(f"simulated meter server on {self.endpoint}: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = self._server([self._device(m) for m in self.meters])
            await server.serve_forever(background=True)
        except Exception as err:  # reported to the thread that called start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        await self._stopping.wait()
        await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus

    def _server(self, devices: list[SimDevice]) -> ModbusBaseServer:
        ep = self.endpoint
        if isinstance(ep, Tcp):
            return ModbusTcpServer(devices, address=(ep.host, ep.port), trace_pdu=self._count)
        return ModbusSerialServer(
            devices,
            port=ep.device,
            baudrate=ep.baudrate,
            parity=ep.parity,
            stopbits=ep.stopbits,
            trace_pdu=self._count,
        )

    def _count(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests[pdu.dev_id] += 1
        return pdu

    def _device(self, meter: SimulatedMeter) -> SimDevice:
        blocks = {f: _register_block(meter.meter_map, f) for f in ("holding", "input")}
        # pymodbus wants all four tables; a meter has no coils or discrete inputs to speak of.
        no_bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(
            meter.device_id,
            simdata=(no_bits, list(no_bits), blocks["holding"], blocks["input"]),
            action=partial(self._answer, meter),
        )

    async def _answer(
        self,
        meter: SimulatedMeter,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if meter.fault == SILENT:
            assert self._stopping is not None
            await self._stopping.wait()  # no answer until the server shuts down
            return ExcCodes.DEVICE_FAILURE
        if meter.fault is not None:
            return meter.fault
        function = _FUNCTION_OF_CODE.get(function_code)
        numbers = meter.values()
        for v in meter.meter_map.value:
            overlaps = v.address < address + count and v.end > address
            if v.function == function and overlaps and v.name in numbers:
                at = v.address - start_address
                registers[at : at + v.words] = encode(v, numbers[v.name])
        return None


def _register_block(meter_map: MeterMap, function: Function) -> list[SimData]:
    """Readable (read-only) registers of one table; the rest answer 'illegal address'."""
    values = [v for v in meter_map.value if v.function == function]
    if not values:
        return [SimData(0, datatype=DataType.INVALID)]
    if meter_map.max_gap:
        # Meters that tolerate gaps (Eastron) answer every address of their table.
        lo, hi = min(v.address for v in values), max(v.end for v in values)
        return [SimData(lo, count=hi - lo, values=0, datatype=DataType.REGISTERS, readonly=True)]
    return [
        SimData(v.address, count=v.words, values=0, datatype=DataType.REGISTERS, readonly=True)
        for v in values
    ]


def in_map_units(meter_map: MeterMap, watts: float, wh: float) -> dict[str, float]:
    """Power in W and energy in Wh -> the map's power and energy values in its own units."""
    energy = meter_map.values[meter_map.energy]
    # Like the real meter, the counter only shows whole steps of its resolution (an EM24
    # 0.1 kWh); the rounding to 9 digits keeps 5000.25 kWh from flooring to 5000.24.
    steps = math.floor(round(wh / meter_map.counter_resolution_wh, 9))
    counter = steps * meter_map.counter_resolution_wh / meter_map.wh_per_unit
    if energy.wrap is not None:
        counter %= energy.wrap  # the meter restarts from 0 past its range, like the real one
    return {meter_map.power: watts / meter_map.watts_per_unit, meter_map.energy: counter}


@dataclass
class SteadyLoad:
    """A constant load: its energy counter grows with wall-clock time from `start_wh`."""

    meter_map: MeterMap
    watts: float
    start_wh: float = 0.0
    _t0: float = field(default_factory=time.monotonic)

    def __call__(self) -> dict[str, float]:
        """The map's values now."""
        wh = self.start_wh + self.watts * (time.monotonic() - self._t0) / 3600.0
        return in_map_units(self.meter_map, self.watts, wh)


@click.command()
@click.argument("model")
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Serve Modbus TCP here.")
@click.option("--rtu", "rtu", metavar="DEVICE", help="Serve Modbus RTU on this serial device.")
@click.option("--baudrate", default=9600, show_default=True)
@click.option("--device-id", default=1, show_default=True)
@click.option("--watts", default=1000.0, show_default=True, help="Constant active power.")
@click.option("--start-kwh", default=0.0, show_default=True, help="Energy counter at start.")
def main(
    model: str,
    tcp: str | None,
    rtu: str | None,
    baudrate: int,
    device_id: int,
    watts: float,
    start_kwh: float,
) -> None:
    """Serve a simulated MODEL meter (a shipped map name or a map .toml) until Ctrl-C."""
    if (tcp is None) == (rtu is None):
        raise click.UsageError("give exactly one of --tcp HOST:PORT or --rtu DEVICE")
    meter_map = load_map(map_path(model, Path.cwd()))
    load = SteadyLoad(meter_map, watts, start_kwh * 1000.0)
    endpoint: Tcp | Rtu
    if tcp is not None:
        host, _, port = tcp.rpartition(":")
        endpoint = Tcp(host or "127.0.0.1", int(port))
    else:
        endpoint = Rtu(str(rtu), baudrate)
    with MeterServer([SimulatedMeter(device_id, meter_map, load)], endpoint):
        click.echo(f"{model} meter {device_id} at {watts} W on {endpoint}; Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
