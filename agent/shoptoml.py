"""The gateway's shop.toml for a simulated shop: one writer for the demo day and the live shop.

Machine thresholds and cost figures come from each machine's profile, its id and name
from the plan. For the live shop every machine gets a [[machine.sensor]] (MQTT), or a
[[machine.meter]] when the plan gives it a meter (Modbus TCP, all meters as devices of
one simulated bus). A load test can ask for more machines than the plan has: the plan's
machines then repeat as replicas `<id>.<k>` (k = 2, 3, ...), each with its own source.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent import tomlout
from agent.profile import builtin_profile
from agent.shopplan import PlannedMachine, ShopPlan
from gateway.config import Machine, Meter, Sensor
from gateway.errors import ConfigError

REPLICA_SEP = "."  # cnc-01.2 is the second cnc-01 of a load-test shop


def plan_machine(pm: PlannedMachine, machine_id: str | None = None) -> Machine:
    """shop.toml's [[machine]] of one plan machine: its profile's figures, the plan's name."""
    profile = builtin_profile(pm.profile)
    return profile.machine.model_copy(
        update={"id": machine_id or pm.id, "name": pm.name or profile.machine.name}
    )


@dataclass(frozen=True, slots=True)
class LiveMachine:
    """A machine of the live shop: the plan machine it repeats and its shop.toml entry."""

    planned: PlannedMachine
    machine: Machine  # with exactly one [[machine.sensor]] or [[machine.meter]]
    replica: int  # 1 for the plan's own machine, 2, 3, ... for its repeats

    @property
    def source(self) -> str:
        """The sensor's or meter's id."""
        return (self.machine.sensor or self.machine.meter)[0].id


def live_machines(
    plan: ShopPlan, count: int | None = None, meter_bus: tuple[str, int] = ("127.0.0.1", 5020)
) -> list[LiveMachine]:
    """The first `count` machines of the plan, repeated as replicas when there are more.

    Metered machines are devices 1, 2, ... of one Modbus TCP server at `meter_bus`.
    """
    count = len(plan.machine) if count is None else count
    if count < 1:
        raise ConfigError(f"--sensors {count}: a shop needs at least one machine")
    out = []
    device_ids = itertools.count(1)
    for k in range(count):
        pm = plan.machine[k % len(plan.machine)]
        replica = k // len(plan.machine) + 1
        mid = pm.id if replica == 1 else f"{pm.id}{REPLICA_SEP}{replica}"
        if pm.meter is None:
            source: dict[str, object] = {"sensor": [Sensor(id=f"{mid}-ct")]}
        else:
            host, port = meter_bus
            meter = Meter(
                id=f"{mid}-meter",
                model=pm.meter,
                transport="tcp",
                host=host,
                port=port,
                device_id=next(device_ids),
            )
            source = {"meter": [meter]}
        out.append(LiveMachine(pm, plan_machine(pm, mid).model_copy(update=source), replica))
    return out


def find_live_machine(plan: ShopPlan, machine: Machine) -> LiveMachine:
    """The plan machine behind a shop.toml machine (by id, replicas by their base id)."""
    base, sep, k = machine.id.rpartition(REPLICA_SEP)
    replica = int(k) if sep and k.isdigit() and int(k) >= 2 else 1
    wanted = machine.id if replica == 1 else base
    for pm in plan.machine:
        if pm.id == wanted:
            return LiveMachine(pm, machine, replica)
    known = ", ".join(pm.id for pm in plan.machine)
    raise ConfigError(
        f"machine {machine.id!r}: not in the shop plan (plan machines: {known}; a replica "
        f"is <plan id>{REPLICA_SEP}<k>), so the agent does not know its profile"
    )


def shop_toml(
    plan: ShopPlan,
    machines: Sequence[Machine],
    header: str,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """A complete shop.toml: the plan's site and tariff, the machines, extra sections."""
    doc: dict[str, Any] = {
        "site": plan.site.model_dump(exclude_unset=True),
        "storage": {"path": "shopwatt-data"},
        **(extra or {}),
        "tariff": plan.tariff.model_dump(exclude_unset=True),
        "machine": [m.model_dump(exclude_unset=True) for m in machines],
    }
    if plan.pricing is not None:
        doc["pricing"] = plan.pricing.model_dump(exclude_unset=True)
    return header + tomlout.dumps(doc)
