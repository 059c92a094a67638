"""A simulated shop as data: its site and tariff, and which machines run which profile how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from agent.datafile import Strict, load_model
from agent.profile import builtin_profile_names
from gateway.config import Ident, LocalTime, Pricing, Site, Tariff, hhmm_minutes
from gateway.meters.maps import available_models

DEMO_PLAN = Path(__file__).parent / "demo-shop.toml"


def _inside_day(window: tuple[str, str]) -> tuple[str, str]:
    start, end = window
    if not 0 < hhmm_minutes(start) < hhmm_minutes(end) < 24 * 60:
        raise ValueError(
            f"[{start!r}, {end!r}]: must start after 00:00, end after it starts and end "
            "before 24:00 (the day's first and last readings are never lost)"
        )
    return window


# Local [start, end) inside the simulated day.
Window = Annotated[tuple[LocalTime, LocalTime], AfterValidator(_inside_day)]


class PlannedMachine(Strict):
    """[[machine]] of a shop plan."""

    id: Ident
    profile: Ident  # a file in agent/profiles/
    name: str = ""  # default: the profile's machine name
    shift: Window  # local [power on, power off); generated jobs fall inside
    jobs: Literal["explicit", "detected"] = "detected"  # explicit: listed in jobs.csv
    counter: bool = True  # the sensor reports a cumulative Wh counter, not only power
    outages: tuple[Window, ...] = ()  # local: readings lost (Wi-Fi down, gateway restarting)
    reboots: tuple[LocalTime, ...] = ()  # local: the sensor restarts, its counter from 0
    # Live shop only: a DIN-rail meter (a shipped map: sdm630, ...) the gateway polls over
    # Modbus TCP instead of a shopwatt sensor; its outages are spans it does not answer.
    meter: str | None = None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        known = builtin_profile_names()
        if v not in known:
            raise ValueError(f"no such profile (known: {', '.join(known)})")
        return v

    @field_validator("meter")
    @classmethod
    def _known_meter(cls, v: str | None) -> str | None:
        models = available_models()
        if v is not None and v not in models:
            raise ValueError(f"no such meter map (shipped: {', '.join(models)})")
        return v

    @model_validator(mode="after")
    def _reboots_need_counter(self) -> PlannedMachine:
        if self.reboots and not self.counter:
            raise ValueError(f"reboots {self.reboots} reset a counter, but counter = false")
        if self.reboots and self.meter:
            raise ValueError(
                f"reboots {self.reboots} are a sensor's; meter {self.meter!r} has none"
            )
        if any(not 0 < hhmm_minutes(r) < 24 * 60 - 1 for r in self.reboots):
            raise ValueError(f"reboots {self.reboots} must fall between 00:01 and 23:58")
        return self


class PlannedCustomer(Strict):
    """[[customer]] of a shop plan: who generated jobs are for (the ledger's customers)."""

    id: Ident
    name: str
    vat_id: str = ""
    price_list: str = ""
    internal: bool = False


class PlannedBlock(Strict):
    """A member's block of prepaid hours, bought on the first of the simulated day's month."""

    hours: Annotated[float, Field(gt=0)]
    price: Annotated[float, Field(ge=0)]
    valid_days: Annotated[int, Field(gt=0)] = 365


class PlannedSubscription(Strict):
    """A member's monthly hours, from the simulated day's month on."""

    hours: Annotated[float, Field(gt=0)]
    price: Annotated[float, Field(ge=0)]
    carry_over: bool = False
    cap: Annotated[float, Field(gt=0)] | None = None


class PlannedMember(Strict):
    """[[member]] of a shop plan: a customer with prepaid hours (docs/members.md)."""

    id: Ident  # a [[customer]] id
    weights: dict[str, Annotated[float, Field(ge=0)]]  # machine (or '*') -> credits per hour
    hours: Literal["run_hours", "job_hours"] = "job_hours"
    block: list[PlannedBlock] = Field(default_factory=list)
    subscription: PlannedSubscription | None = None


class ShopPlan(Strict):
    """A whole plan file."""

    site: Site
    tariff: Tariff
    customer: Annotated[list[PlannedCustomer], Field(min_length=1)]
    machine: Annotated[list[PlannedMachine], Field(min_length=1)]
    pricing: Pricing | None = None  # written into the shop.toml as it is
    member: list[PlannedMember] = Field(default_factory=list)

    @property
    def customers(self) -> list[str]:
        """The display names generated jobs draw from (what a jobs.csv names)."""
        return [c.name for c in self.customer]

    @model_validator(mode="after")
    def _members_are_customers(self) -> ShopPlan:
        ids, machines = {c.id for c in self.customer}, {m.id for m in self.machine}
        for m in self.member:
            if m.id not in ids:
                raise ValueError(f"member {m.id!r} is not a [[customer]] id")
            unknown = sorted(set(m.weights) - machines - {"*"})
            if unknown:
                raise ValueError(f"member {m.id!r}: weights of unknown machines {unknown}")
        return self

    @field_validator("machine")
    @classmethod
    def _unique_ids(cls, v: list[PlannedMachine]) -> list[PlannedMachine]:
        ids = [m.id for m in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"machine ids must be unique, repeated: {dup}")
        return v


def load_plan(path: str | Path = DEMO_PLAN) -> ShopPlan:
    """Load a shop plan (default: the demo shop); raises ConfigError naming file and key."""
    return load_model(Path(path), ShopPlan)
