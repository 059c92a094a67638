"""The Modbus input over TCP against real pymodbus servers (the simulated meters)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.constants import ExcCodes

from agent.modbus_meter import SILENT, MeterServer, SimulatedMeter, Tcp, in_map_units
from gateway.inputs.base import Input
from gateway.inputs.modbus import ModbusInput, _Device, specs_from_config
from tests.modbus.modbus_helpers import FAST, Collector, fresh, shipped_map, shop_with_meters, stale
from tests.servers import LOOPBACK, free_port

pytestmark = pytest.mark.services


def _tcp(meter_id: str, model: str, port: int, device_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": meter_id,
        "model": model,
        "transport": "tcp",
        "host": LOOPBACK,
        "port": port,
        "device_id": device_id,
        **FAST,
        **extra,
    }


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def sink() -> Collector:
    return Collector()


class Running:
    """An input started on a sink, stopped (and joined) when the test ends."""

    def __init__(self, inp: ModbusInput, sink: Collector) -> None:
        self.input, self.sink = inp, sink
        inp.start(sink)

    def stats(self, meter_source: str) -> dict[str, int]:
        """A snapshot while polling goes on: only for counters no poll is halfway through."""
        return dict(self.input.stats()[meter_source])

    def final(self, meter_source: str) -> dict[str, int]:
        """Stop (joins the bus threads: no poll is half done), then the counters."""
        self.input.stop()
        return self.stats(meter_source)


@pytest.fixture
def run(sink: Collector) -> Iterator[Any]:
    started: list[ModbusInput] = []

    def _run(cfg: Any) -> Running:
        inp = ModbusInput.from_config(cfg)
        started.append(inp)
        return Running(inp, sink)

    yield _run
    for inp in started:
        inp.stop()


def test_readings_carry_w_and_wh_for_the_meters_machine(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    sdm, em24 = shipped_map("sdm630"), shipped_map("em24")
    meters = [
        SimulatedMeter(1, sdm, lambda: in_map_units(sdm, 1234.5, 5_000_250.0)),
        SimulatedMeter(2, em24, lambda: in_map_units(em24, 99.9, 12_345_600.0)),
    ]
    cfg = shop_with_meters(
        tmp_path,
        {
            "cnc-01": [_tcp("cnc-main", "sdm630", port, 1)],
            "lathe-01": [_tcp("lathe-pm", "em24", port, 2)],
        },
    )
    with MeterServer(meters, Tcp(LOOPBACK, port)):
        run(cfg)
        sink.wait_for(
            "a fresh reading from each meter",
            lambda rs: fresh("cnc-main", 1)(rs) and fresh("lathe-pm", 1)(rs),
        )
    cnc = next(r for r in sink.of("cnc-main") if not r.stale)
    lathe = next(r for r in sink.of("lathe-pm") if not r.stale)
    assert (cnc.machine, cnc.watts, cnc.wh) == ("cnc-01", 1234.5, pytest.approx(5_000_250.0))
    assert cnc.source == f"modbus:tcp:{LOOPBACK}:{port}/1"
    # EM24 registers hold W*10 and kWh*10: 12345.6 kWh -> Wh.
    assert (lathe.machine, lathe.watts, lathe.wh) == (
        "lathe-01",
        pytest.approx(99.9),
        pytest.approx(12_345_600.0),
    )


def test_each_poll_is_one_grouped_request_on_the_wire(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    sdm = shipped_map("sdm630")
    server = MeterServer(
        [SimulatedMeter(1, sdm, lambda: in_map_units(sdm, 10, 20))], Tcp(LOOPBACK, port)
    )
    cfg = shop_with_meters(tmp_path, {"cnc-01": [_tcp("pm", "sdm630", port, 1)]})
    with server:
        r = run(cfg)
        sink.wait_for("5 fresh readings", fresh("pm", 5))
        counters = r.final(f"modbus:tcp:{LOOPBACK}:{port}/1")
    # Power (0x34) and import energy (0x48) travel in one 22-register read per poll.
    assert counters["polls"] >= 5
    assert server.requests[1] == counters["requests"] == counters["polls"]


def test_exception_replies_are_counted_and_the_healthy_device_keeps_flowing(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    pz = shipped_map("pzem004t")
    healthy = SimulatedMeter(1, pz, lambda: in_map_units(pz, 500, 1000))
    broken = SimulatedMeter(
        2, pz, lambda: in_map_units(pz, 500, 1000), fault=ExcCodes.DEVICE_FAILURE
    )
    cfg = shop_with_meters(
        tmp_path,
        {"m1": [_tcp("ok", "pzem004t", port, 1)], "m2": [_tcp("bad", "pzem004t", port, 2)]},
    )
    with MeterServer([healthy, broken], Tcp(LOOPBACK, port)):
        r = run(cfg)
        sink.wait_for(
            "healthy readings while the other refuses",
            lambda rs: fresh("ok", 10)(rs) and stale("bad", 3)(rs),
        )
        bad = r.final(f"modbus:tcp:{LOOPBACK}:{port}/2")
        ok = r.stats(f"modbus:tcp:{LOOPBACK}:{port}/1")
    assert bad["exception_replies"] >= 3 and bad["transport_errors"] == 0
    assert bad["readings"] == 0 and bad["stale"] >= 3 and bad["last_ok_ms"] == 0
    # A refusal is an answer: it is not retried.
    assert bad["requests"] == bad["exception_replies"]
    assert ok["exception_replies"] == ok["transport_errors"] == 0 and ok["readings"] >= 10
    assert all(r.watts is None and r.wh is None for r in sink.of("bad"))


def test_a_silent_device_costs_its_bus_a_bounded_time_per_poll(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    pz = shipped_map("pzem004t")
    meters = [
        SimulatedMeter(1, pz, lambda: in_map_units(pz, 500, 1000)),
        SimulatedMeter(2, pz, lambda: in_map_units(pz, 500, 1000), fault=SILENT),
    ]
    cfg = shop_with_meters(
        tmp_path,
        {"m1": [_tcp("ok", "pzem004t", port, 1)], "m2": [_tcp("dead", "pzem004t", port, 2)]},
    )
    with MeterServer(meters, Tcp(LOOPBACK, port)):
        r = run(cfg)
        readings = sink.wait_for(
            "healthy readings around the dead one's timeouts",
            lambda rs: stale("dead", 3)(rs) and fresh("ok", 10)(rs),
        )
        dead = r.final(f"modbus:tcp:{LOOPBACK}:{port}/2")
    # Each poll of the dead device gives up after timeout * (retries + 1): 2 requests.
    assert dead["requests"] == 2 * dead["polls"] == dead["transport_errors"]
    assert dead["exception_replies"] == 0
    # Healthy readings arrive between the dead device's attempts, not only before them.
    order = [x.sensor for x in readings if x.sensor == "dead" or not x.stale]
    first_dead, last_dead = order.index("dead"), len(order) - 1 - order[::-1].index("dead")
    assert "ok" in order[first_dead:last_dead]


def test_a_value_not_refreshed_is_marked_stale_never_repeated(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    sdm = shipped_map("sdm630")
    energy = {"import_energy": 10.0}
    meter = SimulatedMeter(1, sdm, lambda: {"total_power": 2000.0, **energy})
    cfg = shop_with_meters(tmp_path, {"m1": [_tcp("pm", "sdm630", port, 1)]})
    source = f"modbus:tcp:{LOOPBACK}:{port}/1"
    with MeterServer([meter], Tcp(LOOPBACK, port)):
        r = run(cfg)
        sink.wait_for("a fresh reading", fresh("pm", 1))
        # The meter reports NaN energy (Eastron does while starting up): power stays fresh.
        energy["import_energy"] = math.nan
        sink.wait_for("a reading without energy", lambda rs: any(x.stale and x.watts for x in rs))
        assert r.stats(source)["consecutive_failures"] == 0  # it answers: no backoff
        meter.fault = ExcCodes.DEVICE_BUSY
        sink.wait_for(
            "a reading without any value", lambda rs: any(x.stale and x.watts is None for x in rs)
        )
        before = r.stats(source)
        meter.fault, energy["import_energy"] = None, 11.0
        n = len(sink.of("pm"))
        sink.wait_for("fresh again", lambda rs: any(not x.stale for x in rs[n:]))
        after = r.final(source)
    partial = next(x for x in sink.of("pm") if x.stale and x.watts)
    assert (partial.watts, partial.wh) == (2000.0, None)
    empty = next(x for x in sink.of("pm") if x.stale and x.watts is None)
    assert empty.wh is None
    assert before["invalid_values"] >= 1 and before["consecutive_failures"] >= 1
    assert after["consecutive_failures"] == 0 and after["last_ok_ms"] > before["last_ok_ms"]
    assert next(x for x in sink.of("pm")[n:] if not x.stale).wh == 11_000.0


def test_a_meter_that_is_not_there_yet_is_picked_up_when_it_appears(
    tmp_path: Path, port: int, sink: Collector, run: Any
) -> None:
    pz = shipped_map("pzem004t")
    cfg = shop_with_meters(tmp_path, {"m1": [_tcp("pm", "pzem004t", port, 1)]})
    r = run(cfg)
    sink.wait_for("stale readings while nothing listens", stale("pm", 2))
    assert r.stats(f"modbus:tcp:{LOOPBACK}:{port}/1")["transport_errors"] >= 2
    with MeterServer(
        [SimulatedMeter(1, pz, lambda: in_map_units(pz, 42.0, 7.0))], Tcp(LOOPBACK, port)
    ):
        sink.wait_for("a fresh reading once the meter answers", fresh("pm", 1))
    assert next(x for x in sink.of("pm") if not x.stale).watts == pytest.approx(42.0)


def test_backoff_doubles_up_to_its_cap_and_resets_on_success(tmp_path: Path, port: int) -> None:
    cfg = shop_with_meters(tmp_path, {"m1": [_tcp("pm", "pzem004t", port, 1)]})
    dev = _Device(specs_from_config(cfg)[0], ())
    delays = []
    for failures in range(1, 7):
        dev.counters["consecutive_failures"] = failures
        dev.reschedule(100.0, ok=False)
        delays.append(round(dev.due - 100.0, 3))
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]  # poll_s doubling, capped at backoff_max_s
    dev.due = 100.0
    dev.reschedule(100.01, ok=True)
    assert dev.due == pytest.approx(100.05)  # on time: keeps the poll rhythm
    dev.reschedule(103.0, ok=True)
    assert dev.due == 103.0  # late: no burst of catch-up polls


def test_the_input_satisfies_the_live_input_contract(tmp_path: Path, port: int) -> None:
    inp: Input = ModbusInput.from_config(
        shop_with_meters(tmp_path, {"m1": [_tcp("pm", "pzem004t", port, 1)]})
    )
    assert set(inp.stats()) == {f"modbus:tcp:{LOOPBACK}:{port}/1"}
    assert all(v == 0 for v in inp.stats()[f"modbus:tcp:{LOOPBACK}:{port}/1"].values())
