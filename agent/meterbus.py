"""The live shop's Modbus meters: simulated meters whose registers follow their machines.

Every [[machine.meter]] of shop.toml that points at this host becomes a device of a
pymodbus server (agent.modbus_meter), answering with its plan machine's true power and an
energy counter that has been running for months, in the units of its register map. The
gateway polls them on its own clock, so meters belong to real-time runs only.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agent.localservers import LOOPBACK
from agent.modbus_meter import SILENT, MeterServer, SimulatedMeter, Tcp, Values, in_map_units
from agent.shopplan import ShopPlan
from agent.shoptoml import LiveMachine, find_live_machine
from agent.timeline import ShopTimeline
from gateway.config import ShopConfig
from gateway.errors import ConfigError
from gateway.meters.maps import MeterMap, load_map, map_path


@dataclass
class MeteredMachine:
    """A machine measured by a simulated meter."""

    live: LiveMachine
    meter: SimulatedMeter
    server: MeterServer


class MeterBus:
    """All simulated meters of a live shop, grouped into one server per host:port."""

    def __init__(
        self,
        cfg: ShopConfig,
        plan: ShopPlan,
        timeline: ShopTimeline,
        now_ms: Callable[[], int],
        seed: int,
    ) -> None:
        self.timeline = timeline
        self.now_ms = now_ms
        self.start_ms = 0  # set by start(): the counters count from there
        self.machines: dict[str, MeteredMachine] = {}
        buses: dict[tuple[str, int], list[tuple[LiveMachine, SimulatedMeter]]] = {}
        for machine in cfg.machine:
            for spec in machine.meter:
                if spec.transport != "tcp" or spec.host not in (LOOPBACK, "localhost"):
                    raise ConfigError(
                        f"{cfg.source}: meter {spec.id!r}: the agent serves meters over Modbus "
                        f"TCP on {LOOPBACK} only, not {spec.transport} {spec.host}"
                    )
                live = find_live_machine(plan, machine)
                # A counter months old, from the machine's own stream (stable per seed).
                rng = np.random.default_rng([seed, zlib.crc32(machine.id.encode()), 2])
                meter_map = load_map(map_path(spec.model, cfg.source.parent))
                values = self._values(live.planned.id, meter_map, float(rng.uniform(2e5, 5e6)))
                endpoint = (LOOPBACK, int(spec.port or 502))
                buses.setdefault(endpoint, []).append(
                    (live, SimulatedMeter(spec.device_id, meter_map, values))
                )
        self.servers = []
        for endpoint, devices in buses.items():
            server = MeterServer([meter for _, meter in devices], Tcp(*endpoint))
            self.servers.append(server)
            for live, meter in devices:
                self.machines[live.machine.id] = MeteredMachine(live, meter, server)

    def _values(self, plan_id: str, meter_map: MeterMap, counter_wh: float) -> Values:
        """The meter's registers at the simulated time of each request."""

        def now() -> dict[str, float]:
            t = self.now_ms()
            watts, _ = self.timeline.power_at(plan_id, np.array([float(t)]))
            wh = counter_wh + self.timeline.energy_wh(plan_id, self.start_ms, t)
            return in_map_units(meter_map, float(watts[0]), wh)

        return now

    def start(self, start_ms: int) -> None:
        """Serve every meter; counters grow from start_ms on."""
        self.start_ms = start_ms
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        """Stop serving."""
        for server in self.servers:
            server.stop()

    def silence(self, machine: str, silent: bool) -> None:
        """The meter stops answering (or answers again): a cut RS485 line, a tripped fuse."""
        self.machines[machine].meter.fault = SILENT if silent else None

    def requests(self, machine: str) -> int:
        """Requests the machine's meter received."""
        m = self.machines[machine]
        return m.server.requests[m.meter.device_id]
