"""Modbus meter input: polls every [[machine.meter]] and [[site_meter.meter]] over TCP or
RTU, one thread per bus.

Meters that share a bus (one serial port, or one host:port such as a TCP-to-RS485
gateway) are polled in turn by that bus's thread; different buses never wait for each
other. A meter that does not answer costs its bus at most timeout_s * (retries + 1) per
poll and is then polled less and less often (exponential backoff up to backoff_max_s), so
healthy meters on the same RS485 line keep their rhythm. Every poll yields one Reading:
values that could not be refreshed are None and the reading is marked stale; a previous
value is never repeated as if it were new.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymodbus.client import ModbusBaseSyncClient, ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from gateway.clock import now_ms
from gateway.config import Meter, Metered, ShopConfig
from gateway.counted import counted
from gateway.engine.model import Reading, Stats
from gateway.errors import ConfigError
from gateway.inputs.base import Sink
from gateway.meters.maps import MeterMap, load_map, map_path
from gateway.meters.registers import ReadRequest, decode, plan_reads

log = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 502
# Counters every device reports, all present from the start (stats() reads them unlocked).
COUNTERS = (
    "polls",  # poll attempts
    "readings",  # readings delivered with power and energy both fresh
    "stale",  # readings delivered with a value missing (not refreshed or implausible)
    "requests",  # Modbus requests sent, retries included
    "transport_errors",  # no valid answer: timeout, refused connection, bad frame
    "exception_replies",  # the device answered with a Modbus exception code
    "invalid_values",  # decoded values rejected as implausible (NaN, counter out of range)
    "sink_errors",  # readings the consumer raised on (dropped after logging)
    "internal_errors",  # unexpected errors while polling (logged with traceback)
    "consecutive_failures",  # gauge: polls in a row that got no value at all (drives backoff)
    "last_ok_ms",  # gauge: UTC ms of the last poll that got a value, 0 = never
)


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """A configured meter with its map loaded and its reads planned."""

    machine: str
    meter: Meter
    meter_map: MeterMap
    where: str  # the config key, for error messages: "machine[0] (id=cnc-01).meter[0] ..."

    @property
    def bus(self) -> str:
        """The bus the meter hangs on: 'tcp:host:port' or 'rtu:/dev/ttyUSB0'."""
        m = self.meter
        if m.transport == "tcp":
            return f"tcp:{m.host}:{m.port or DEFAULT_TCP_PORT}"
        return f"rtu:{m.port}"

    @property
    def source(self) -> str:
        """The Reading.source and stats key: 'modbus:<bus>/<device_id>'."""
        return f"modbus:{self.bus}/{self.meter.device_id}"

    @property
    def reads(self) -> tuple[ReadRequest, ...]:
        """The requests one poll sends: power and the import counter, grouped."""
        return plan_reads(self.meter_map, (self.meter_map.power, self.meter_map.energy))


def specs_from_config(cfg: ShopConfig) -> list[MeterSpec]:
    """Every [[machine.meter]] and [[site_meter.meter]] with its map (a map path is
    relative to shop.toml)."""
    sections: dict[str, Sequence[Metered]] = {"machine": cfg.machine, "site_meter": cfg.site_meter}
    return [
        MeterSpec(
            owner.id,
            meter,
            load_map(map_path(meter.model, cfg.source.parent)),
            f"{section}[{i}] (id={owner.id}).meter[{j}] (id={meter.id})",
        )
        for section, owners in sections.items()
        for i, owner in enumerate(owners)
        for j, meter in enumerate(owner.meter)
    ]


class _Unanswered(Exception):
    """A request got no valid answer after all retries: skip the device's other reads."""


@dataclass
class _Device:
    spec: MeterSpec
    reads: tuple[ReadRequest, ...]
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    due: float = 0.0  # time.monotonic() of the next poll
    last_error: str = ""

    def reschedule(self, now: float, ok: bool) -> None:
        """Next poll: the normal rhythm, or doubling delays while the meter keeps failing."""
        m = self.spec.meter
        if ok:
            # Keep the phase when on time; when late, do not burst to catch up.
            self.due = max(self.due + m.poll_s, now)
        else:
            failures = self.counters["consecutive_failures"]
            self.due = now + min(m.poll_s * 2 ** (failures - 1), max(m.backoff_max_s, m.poll_s))


class _Bus:
    """One client and one thread polling the devices of one bus in turn."""

    def __init__(self, name: str, specs: Sequence[MeterSpec]) -> None:
        self.name = name
        self.devices = [_Device(s, s.reads) for s in specs]
        self.client = _client(specs[0].meter)
        self.thread: threading.Thread | None = None

    def start(self, sink: Sink, stopping: threading.Event) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(sink, stopping), name=f"modbus {self.name}", daemon=True
        )
        self.thread.start()

    def _run(self, sink: Sink, stopping: threading.Event) -> None:
        while True:
            dev = min(self.devices, key=lambda d: d.due)
            if stopping.wait(max(0.0, dev.due - time.monotonic())):
                break
            try:
                reading = self._poll(dev)
            except Exception:  # a bug must not silence the bus for good
                log.exception("modbus %s: polling %s failed", self.name, dev.spec.meter.id)
                dev.counters["internal_errors"] += 1
                dev.counters["consecutive_failures"] += 1
                dev.reschedule(time.monotonic(), ok=False)
                continue
            self._deliver(dev, reading, sink)
            dev.reschedule(time.monotonic(), ok=dev.counters["consecutive_failures"] == 0)
        self.client.close()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    def _poll(self, dev: _Device) -> Reading:
        spec, c = dev.spec, dev.counters
        c["polls"] += 1
        values: dict[str, float] = {}
        try:
            for rq in dev.reads:
                registers = self._read(dev, rq)
                if registers is None:
                    continue
                for name, number in decode(rq, registers).items():
                    if spec.meter_map.values[name].accepts(number):
                        values[name] = number
                    else:
                        c["invalid_values"] += 1
                        dev.last_error = f"implausible {name} = {number}"
        except _Unanswered:
            pass  # the device's other reads would only time out as well
        m = spec.meter_map
        watts = values.get(m.power)
        energy = values.get(m.energy)
        reading = Reading(
            machine=spec.machine,
            sensor=spec.meter.id,
            t_ms=now_ms(),
            watts=None if watts is None else watts * m.watts_per_unit,
            wh=None if energy is None else energy * m.wh_per_unit,
            stale=watts is None or energy is None,
            source=spec.source,
        )
        self._track_health(dev, reading, answered=bool(values))
        return reading

    def _read(self, dev: _Device, rq: ReadRequest) -> list[int] | None:
        """Registers for one request; None if the device refused; _Unanswered if silent."""
        m, c = dev.spec.meter, dev.counters
        # One client serves the whole bus; the timeout is the device's own.
        self.client.comm_params.timeout_connect = m.timeout_s
        for _attempt in range(m.retries + 1):
            c["requests"] += 1
            try:
                rr = self._request(rq, m.device_id)
            except (ModbusException, OSError) as err:
                c["transport_errors"] += 1
                dev.last_error = str(err)
                if m.transport == "tcp":
                    # A late answer would otherwise be read as the next device's answer.
                    self.client.close()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
                continue
            if rr.isError():
                c["exception_replies"] += 1
                dev.last_error = f"exception code {getattr(rr, 'exception_code', '?')}"
                return None  # the device is alive and said no: asking again changes nothing
            if len(rr.registers) < rq.count:
                c["transport_errors"] += 1
                dev.last_error = f"short answer: {len(rr.registers)} of {rq.count} registers"
                continue
            return list(rr.registers)
        raise _Unanswered

    def _request(self, rq: ReadRequest, device_id: int) -> ModbusPDU:
        if rq.function == "input":
            return self.client.read_input_registers(rq.address, count=rq.count, device_id=device_id)
        return self.client.read_holding_registers(rq.address, count=rq.count, device_id=device_id)

    def _track_health(self, dev: _Device, reading: Reading, answered: bool) -> None:
        # A meter that delivers some values (say power, with the counter NaN while it
        # starts up) keeps its rhythm; only one that delivers nothing is backed off.
        c, meter = dev.counters, dev.spec.meter.id
        if answered:
            if c["consecutive_failures"]:
                log.warning(
                    "modbus meter %s answers again after %s",
                    meter,
                    counted(c["consecutive_failures"], "failed poll"),
                )
            c["consecutive_failures"] = 0
            c["last_ok_ms"] = reading.t_ms
            return
        if c["consecutive_failures"] == 0:  # log the transition, not every failed poll
            log.warning(
                "modbus meter %s (%s): no values: %s", meter, dev.spec.source, dev.last_error
            )
        c["consecutive_failures"] += 1

    def _deliver(self, dev: _Device, reading: Reading, sink: Sink) -> None:
        try:
            sink(reading)
        except Exception:
            log.exception(
                "modbus %s: the consumer rejected a reading of %s", self.name, dev.spec.meter.id
            )
            dev.counters["sink_errors"] += 1
            return
        dev.counters["stale" if reading.stale else "readings"] += 1


def _client(m: Meter) -> ModbusBaseSyncClient:
    # retries=0: we retry ourselves, per device, and count every attempt.
    if m.transport == "tcp":
        assert m.host is not None
        port = m.port if isinstance(m.port, int) else DEFAULT_TCP_PORT
        return ModbusTcpClient(m.host, port=port, timeout=m.timeout_s, retries=0)
    return ModbusSerialClient(
        str(m.port),
        baudrate=m.baudrate,
        parity=m.parity,
        stopbits=m.stopbits,
        bytesize=8,
        timeout=m.timeout_s,
        retries=0,
    )


class ModbusInput:
    """The Modbus input (gateway.inputs.base.Input): all configured meters, all buses."""

    def __init__(self, specs: Sequence[MeterSpec], source: str = "shop.toml") -> None:
        _check_buses(specs, source)
        by_bus: dict[str, list[MeterSpec]] = {}
        for s in specs:
            by_bus.setdefault(s.bus, []).append(s)
        self._buses = [_Bus(name, group) for name, group in by_bus.items()]
        self._stopping = threading.Event()

    @classmethod
    def from_config(cls, cfg: ShopConfig) -> ModbusInput:
        """All meters of a validated shop.toml; raises ConfigError for bad maps or buses."""
        return cls(specs_from_config(cfg), str(cfg.source))

    def start(self, sink: Sink) -> None:
        """Start one polling thread per bus."""
        # We count and log failures ourselves (once per outage); pymodbus would log every
        # timeout with a frame dump, which floods the log of a Pi on an SD card.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        for bus in self._buses:
            bus.start(sink, self._stopping)

    def stop(self) -> None:
        """Stop polling; returns when every bus thread has ended (no sink call after)."""
        self._stopping.set()
        for bus in self._buses:
            if bus.thread is not None:
                bus.thread.join()

    def stats(self) -> Stats:
        """Counters per device, keyed by its source ('modbus:<bus>/<device_id>')."""
        return {d.spec.source: dict(d.counters) for b in self._buses for d in b.devices}


def _check_buses(specs: Sequence[MeterSpec], source: str) -> None:
    """Rules that span meters: unique ids, one device id per bus, one line setting per port."""
    first_id: dict[str, MeterSpec] = {}
    first_on_bus: dict[str, MeterSpec] = {}
    taken: dict[tuple[str, int], MeterSpec] = {}
    for s in specs:
        m = s.meter
        if (other := first_id.setdefault(m.id, s)) is not s:
            raise ConfigError(f"{source}: {s.where}: id '{m.id}' is already used by {other.where}")
        if (other := taken.setdefault((s.bus, m.device_id), s)) is not s:
            raise ConfigError(
                f"{source}: {s.where}.device_id = {m.device_id}: already used on {s.bus} "
                f"by {other.where}"
            )
        first = first_on_bus.setdefault(s.bus, s).meter
        line = ("baudrate", "parity", "stopbits")
        if m.transport == "rtu" and any(getattr(m, k) != getattr(first, k) for k in line):
            raise ConfigError(
                f"{source}: {s.where}: {m.port} runs at {m.baudrate} {m.parity} {m.stopbits}, "
                f"but {first_on_bus[s.bus].where} sets {first.baudrate} {first.parity} "
                f"{first.stopbits}: meters on one RS485 line must share its settings"
            )
