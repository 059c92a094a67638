"""The gateway's shop.toml for a simulated shop: one writer for the demo day and the live shop.

Machine thresholds and cost figures come from each machine's profile, its id and name
from the plan. For the live (MQTT) shop every machine gets a [[machine.sensor]], and a
load test can ask for more sensors than the plan has machines: the plan's machines then
repeat as replicas `<id>.<k>` (k = 2, 3, ...), each with its own sensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent import tomlout
from agent.profile import builtin_profile
from agent.shopplan import PlannedMachine, ShopPlan
from gateway.config import Machine, Sensor
from gateway.errors import ConfigError

REPLICA_SEP = "."  # cnc-01.2 is the second cnc-01 of a load-test shop


def plan_machine(pm: PlannedMachine, machine_id: str | None = None) -> Machine:
    """shop.toml's [[machine]] of one plan machine: its profile's figures, the plan's name."""
    profile = builtin_profile(pm.profile)
    return profile.machine.model_copy(
        update={"id": machine_id or pm.id, "name": pm.name or profile.machine.name}
    )


def sensor_id(machine_id: str) -> str:
    """The id of the simulated sensor on a machine (its MQTT topic segment)."""
    return f"{machine_id}-ct"


@dataclass(frozen=True, slots=True)
class LiveMachine:
    """A machine of the live shop: the plan machine it repeats and its shop.toml entry."""

    planned: PlannedMachine
    machine: Machine  # with exactly one [[machine.sensor]]
    replica: int  # 1 for the plan's own machine, 2, 3, ... for its repeats

    @property
    def sensor(self) -> str:
        """The sensor id."""
        return self.machine.sensor[0].id


def live_machines(plan: ShopPlan, sensors: int | None = None) -> list[LiveMachine]:
    """The first `sensors` machines of the plan, repeated as replicas when there are more."""
    count = len(plan.machine) if sensors is None else sensors
    if count < 1:
        raise ConfigError(f"--sensors {count}: a shop needs at least one sensor")
    out = []
    for k in range(count):
        pm = plan.machine[k % len(plan.machine)]
        replica = k // len(plan.machine) + 1
        mid = pm.id if replica == 1 else f"{pm.id}{REPLICA_SEP}{replica}"
        machine = plan_machine(pm, mid).model_copy(update={"sensor": [Sensor(id=sensor_id(mid))]})
        out.append(LiveMachine(pm, machine, replica))
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
    return header + tomlout.dumps(doc)
