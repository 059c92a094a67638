"""What the service reads from the ledger for its live lines: once per batch, not once per
machine, and the month's demand only when there are new readings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agent.serviceshop import T0, config, write_config
from gateway.engine.model import MachineReadings, Reading
from gateway.service import Service, _per_machine
from tests.servers import Influxd, Mosquitto

SPOT = """
[tariff.spot]
series = "day-ahead"
factor = 0.001
fallback = 0.30
"""


def _readings(first_ms: int, n: int = 6) -> MachineReadings:
    t = first_ms + np.arange(n, dtype=np.int64) * 10_000
    watts = np.full(n, 1500.0)
    return MachineReadings(t, watts, np.cumsum(watts) * 10 / 3600)


def _counted(calls: list[int], real: Callable[..., Any]) -> Callable[..., Any]:
    """The ledger's own method, counting its calls."""

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    return counting


def test_the_price_slots_are_read_once_for_every_machine_due(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    machines = {"mill": "s1", "lathe": "s2", "saw": "s3"}
    path = write_config(tmp_path, broker, influxd, influx_db, machines)
    path.write_text(path.read_text().replace('end = "20:00"\n', 'end = "20:00"\n' + SPOT))
    service = Service(config(path))
    service.ledger.ingest({}, "test")  # the ledger exists (no prices in it)
    calls: list[int] = []
    service.ledger.price_slots = _counted(calls, service.ledger.price_slots)  # type: ignore[method-assign]
    for k, machine in enumerate(machines):
        service._live[machine] = [_readings(T0 + k * 1000)]
    lines = service._live_lines(set(machines))
    assert {line.split(",")[0] for line in lines} >= {"machine_state", "energy"}
    assert len(calls) == 1


def test_the_demand_point_is_made_only_after_new_readings(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str
) -> None:
    path = write_config(tmp_path, broker, influxd, influx_db, {"mill": "s1"})
    service = Service(config(path))
    calls: list[int] = []
    service.ledger.demand = _counted(calls, service.ledger.demand)  # type: ignore[method-assign]
    first = _readings(T0)
    service.ledger.ingest({"mill": first}, "test")
    service._live["mill"] = [first]
    service._live_lines({"mill"})
    assert service._demand_lines()  # the month's demand up to the newest reading
    assert service._demand_lines() == []  # a health tick later, nothing new: nothing to say
    later = _readings(int(first.t_ms[-1]) + 10_000)
    service.ledger.ingest({"mill": later}, "test")
    service._live["mill"] = [later]
    service._live_lines({"mill"})
    assert service._demand_lines()
    assert len(calls) == 2


def test_a_batch_of_readings_in_arrival_order_is_split_per_machine_in_time_order() -> None:
    # As the tracker hands them over: machines interleaved, a late reading, a time twice.
    arrived = [
        Reading("mill", "ct-1", T0 + 2000, 300.0, 2.0),
        Reading("grid", "em-1", T0 + 1000, 5000.0, 90.0),
        Reading("mill", "ct-1", T0 + 1000, 200.0, 1.0),
        Reading("mill", "ct-1", T0 + 2000, 999.0, 9.0),  # the same time again: the first wins
        Reading("grid", "em-1", T0, 4900.0, 89.0),
    ]
    batches, sources = _per_machine(arrived)
    assert sources == {"mill": "ct-1", "grid": "em-1"}
    mill, grid = batches["mill"], batches["grid"]
    assert mill.t_ms.tolist() == [T0 + 1000, T0 + 2000]
    assert (mill.watts.tolist(), mill.wh.tolist()) == ([200.0, 300.0], [1.0, 2.0])
    assert (grid.t_ms.tolist(), grid.watts.tolist()) == ([T0, T0 + 1000], [4900.0, 5000.0])
