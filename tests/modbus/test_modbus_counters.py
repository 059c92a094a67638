"""Coarse meter counters end to end: a real pymodbus server per shipped map -> the Modbus
input -> the engine. Each meter counts in its map's resolution (EM24 0.1 kWh, Eastron
0.01 kWh, PZEM 1 Wh) under a steady load near the machine's rated power, so the counter
sits still for a few polls and then moves a whole step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.modbus_meter import MeterServer, SimulatedMeter, SteadyLoad, Tcp
from gateway.config import parse_config
from gateway.engine import MachineReadings, compute_machine
from gateway.engine.model import Reading
from gateway.inputs.modbus import ModbusInput
from gateway.meters.maps import available_models, load_map, map_path
from tests.modbus.modbus_helpers import Collector
from tests.servers import LOOPBACK, free_port

pytestmark = pytest.mark.services

# Polls are stamped when the answer is in, the simulated counter moves with the clock when
# the request is served: on a busy test machine those differ by tens of ms, so polls are
# long enough that the engine's 10 % tolerance (plus rated_w 10 % above the load) holds.
POLL_S = 0.5
STEPS = 4  # counter steps each meter must show before the engine looks at the readings


def _shop(tmp_path: Path, port: int, loads: dict[str, float]) -> Any:
    """One machine per shipped map, rated 10 % above its steady load."""
    machines = [
        {
            "id": f"m-{model}",
            "off_below_w": 5,
            "run_above_w": 50,
            "rated_w": watts / 0.9,
            "cost": {"purchase": 1000, "life_hours": 1000},
            "meter": [
                {
                    "id": f"pm-{model}",
                    "model": model,
                    "transport": "tcp",
                    "host": LOOPBACK,
                    "port": port,
                    "device_id": k + 1,
                    "poll_s": POLL_S,
                    "timeout_s": 1.0,
                }
            ],
        }
        for k, (model, watts) in enumerate(loads.items())
    ]
    data = {
        "site": {"id": "coarse", "timezone": "UTC"},
        "tariff": {"id": "flat", "rate": 0.3},
        "machine": machines,
    }
    return parse_config(data, tmp_path / "shop.toml")


def _stepped(readings: list[Reading], sensor: str) -> bool:
    """The meter's counter has moved STEPS times."""
    counters = {r.wh for r in readings if r.sensor == sensor and not r.stale}
    return len(counters) > STEPS


def test_every_shipped_maps_counter_resolution_reaches_the_engine_and_loses_nothing(
    tmp_path: Path,
) -> None:
    models = available_models()
    maps = {m: load_map(map_path(m, tmp_path)) for m in models}
    # A third of a counter step per poll: flat, flat, step (EM24: 240 kW, 33 Wh a poll).
    loads = {m: maps[m].counter_resolution_wh / 3 * 3600 / POLL_S for m in models}
    port = free_port()
    cfg = _shop(tmp_path, port, loads)
    meters = [
        SimulatedMeter(k + 1, maps[m], SteadyLoad(maps[m], loads[m], start_wh=5000.0))
        for k, m in enumerate(models)
    ]
    sink = Collector()
    with MeterServer(meters, Tcp(LOOPBACK, port)):
        modbus = ModbusInput.from_config(cfg)
        modbus.start(sink)
        try:
            sink.wait_for(
                f"{STEPS} counter steps from every meter",
                lambda rs: all(_stepped(rs, f"pm-{m}") for m in models),
            )
        finally:
            modbus.stop()
    for model in models:
        fresh = [r for r in sink.of(f"pm-{model}") if not r.stale]
        assert fresh and all(r.wh is not None and r.watts is not None for r in fresh)
        machine = cfg.machines[f"m-{model}"]
        assert machine.counter_resolution_wh == maps[model].counter_resolution_wh
        readings = MachineReadings(
            np.array([r.t_ms for r in fresh], dtype=np.int64),
            np.array([r.watts for r in fresh]),
            np.array([r.wh for r in fresh]),
        )
        result = compute_machine(machine.id, readings, machine, cfg.tariff, cfg.site.tz)
        st = result.stats
        # No step taken for an implausible jump: the engine's total is the meter's.
        assert (model, st.implausible_jumps, st.counter_resets, st.gaps) == (model, 0, 0, 0)
        assert st.metered_wh == pytest.approx(readings.wh[-1] - readings.wh[0]), model
