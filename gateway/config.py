"""shop.toml: the schema, validated once at load; errors name the file, key and value."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError
from gateway.meters.maps import available_models, load_map, map_path
from gateway.tomlmodel import read_toml, validate_model

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STANDARD_BAND = "standard"
# In the [storage] folder: the ledger (SQLite) and the InfluxDB outbox (SQLite).
LEDGER_FILE = "ledger.sqlite"
OUTBOX_FILE = "outbox.db"
_SQLITE_FILES = ("", "-wal", "-shm", "-journal")  # a database and its journals

# Ids end up in MQTT topics, InfluxDB tags and file names: keep them plain.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def hhmm_minutes(value: str) -> int:
    """'HH:MM' -> minutes after local midnight; '24:00' is allowed as an end."""
    hh, sep, mm = value.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and len(mm) == 2):
        raise ValueError("expected a local time 'HH:MM'")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) > 59 or minutes > 24 * 60:
        raise ValueError("expected a local time between 00:00 and 24:00")
    return minutes


LocalTime = Annotated[str, AfterValidator(lambda v: (hhmm_minutes(v), v)[1])]


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Section):
    """[site]"""

    id: Ident
    timezone: str
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)


class Storage(_Section):
    """[storage]"""

    path: str = "shopwatt-data"


class Band(_Section):
    """[[tariff.band]]: a time-of-use window; it belongs to the day it starts."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    rate: NonNeg
    days: Annotated[list[Day], Field(min_length=1)] = list(DAYS)
    start: LocalTime
    end: LocalTime

    @field_validator("name")
    @classmethod
    def _not_standard(cls, v: str) -> str:
        if v == STANDARD_BAND:
            raise ValueError("'standard' is the tariff's own rate; pick another band name")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Band:
        # "00:00" to "24:00" is a whole day (a weekend rate); "06:00" to "06:00" is ambiguous.
        if self.start_min == 24 * 60:
            raise ValueError(f"band '{self.name}' starts at 24:00: use 00:00")
        if self.start_min == self.end_min:
            raise ValueError(f"band '{self.name}' starts and ends at {self.start}: empty")
        return self

    @property
    def start_min(self) -> int:
        """Start in minutes after local midnight."""
        return hhmm_minutes(self.start)

    @property
    def end_min(self) -> int:
        """End in minutes after local midnight; <= start means it ends the next day."""
        return hhmm_minutes(self.end)


# Keys that change no stored row (bill-level charges, CO2): outside the rows' fingerprint.
BILL_KEYS = frozenset(
    {
        "demand_per_kw",
        "fixed_per_day",
        "fixed_per_month",
        "vat",
        "co2_g_per_kwh",
        "co2_series",
        "feed_in_per_kwh",
    }
)


class Spot(_Section):
    """[tariff.spot]: energy priced per slot of a series from `shopwatt prices import`."""

    series: Ident
    factor: Positive = 1.0  # the file's price x factor = currency per kWh (EUR/MWh: 0.001)
    fallback: NonNeg  # currency per kWh in place of a slot the series lacks (counted)


class TariffRates(_Section):
    """A standard rate and time-of-use bands: what one version of the tariff charges.

    With `spot`, the rates are what the shop pays on top of the spot price (grid fee,
    levies, supplier markup), per band.
    """

    rate: NonNeg
    band: list[Band] = []
    spot: Spot | None = None
    # The parts of the bill that are not per kWh (docs/tariffs.md, `shopwatt bill`): they
    # price the month, not a row, so they are BILL_KEYS, outside the rows' fingerprint.
    demand_per_kw: NonNeg = 0.0  # per kW of the month's highest 15-minute average
    fixed_per_day: NonNeg = 0.0  # standing charge per local day
    fixed_per_month: NonNeg = 0.0
    vat: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0  # 0.19 = 19 %
    co2_g_per_kwh: NonNeg = 0.0  # grid carbon intensity: the export's co2_kg
    # An imported carbon-intensity series (g/kWh per slot, `shopwatt prices import`); then
    # co2_g_per_kwh is what a moment without a slot counts.
    co2_series: Ident | None = None
    # What the utility pays per kWh fed in: own solar used by a machine did not earn it.
    feed_in_per_kwh: NonNeg = 0.0

    @field_validator("band")
    @classmethod
    def _unique_names(cls, v: list[Band]) -> list[Band]:
        names = [b.name for b in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"band names must be unique, repeated: {sorted(dup)}")
        return v

    @property
    def own_bands(self) -> list[str]:
        """'standard' then this version's bands in config order."""
        return [STANDARD_BAND, *(b.name for b in self.band)]

    @property
    def own_rates(self) -> list[float]:
        """This version's rates per currency unit and kWh, aligned with own_bands."""
        return [self.rate, *(b.rate for b in self.band)]


class TariffVersion(TariffRates):
    """[[tariff.version]]: the tariff in force from valid_from (local) until the next one."""

    id: Ident
    # A TOML local date (midnight) or local date-time, in [site] timezone.
    valid_from: date | datetime

    @field_validator("valid_from", mode="before")
    @classmethod
    def _local(cls, v: object) -> object:
        # Before parsing: a zero-time string with an offset would otherwise pass as a date.
        try:
            aware = datetime.fromisoformat(v) if isinstance(v, str) else v
        except ValueError:
            return v  # pydantic names what is wrong with it
        if isinstance(aware, datetime) and aware.tzinfo is not None:
            raise ValueError("a local date or date-time without offset ([site] timezone applies)")
        return v

    @property
    def valid_from_wall(self) -> datetime:
        """valid_from as a naive local wall-clock time (a date means its midnight)."""
        v = self.valid_from
        return v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)


class Tariff(TariffRates):
    """[tariff]: the first version (valid from the beginning), then [[tariff.version]]s.

    Each instant is priced by the version in force then; earlier bands win where bands
    of one version overlap.
    """

    id: Ident
    version: list[TariffVersion] = []

    @field_validator("version")
    @classmethod
    def _ordered(cls, v: list[TariffVersion]) -> list[TariffVersion]:
        for before, after in itertools.pairwise(v):
            if after.valid_from_wall <= before.valid_from_wall:
                raise ValueError(
                    f"versions must be in valid_from order: {after.id!r} "
                    f"(valid_from = {after.valid_from.isoformat()}) is not after {before.id!r} "
                    f"(valid_from = {before.valid_from.isoformat()})"
                )
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> Tariff:
        ids = [self.id, *(v.id for v in self.version)]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"tariff and version ids must be unique, repeated: {sorted(dup)}")
        return self

    @property
    def versions(self) -> list[TariffRates]:
        """Every version in time order; the first is [tariff] itself."""
        return [self, *self.version]

    @property
    def version_ids(self) -> list[str]:
        """Ids of the versions, aligned with versions."""
        return [self.id, *(v.id for v in self.version)]

    @property
    def version_days(self) -> list[tuple[str, date, date]]:
        """(id, first, last local day) of each version; the first from date.min, the last to
        date.max. A version taking over at a date-time shares that day with the one before."""
        starts = [date.min, *(v.valid_from_wall.date() for v in self.version)]
        ends = [(v.valid_from_wall - timedelta(microseconds=1)).date() for v in self.version]
        return list(zip(self.version_ids, starts, [*ends, date.max], strict=True))

    @property
    def band_names(self) -> list[str]:
        """'standard', then every version's bands by first appearance: the kwh_<band> columns."""
        names: list[str] = []
        for v in self.versions:
            names += [b for b in v.own_bands if b not in names]
        return names

    @property
    def columns(self) -> list[tuple[int, str]]:
        """Priced columns, (version index, band name): the engine splits energy over these."""
        return [(k, b) for k, v in enumerate(self.versions) for b in v.own_bands]

    @property
    def rates(self) -> list[float]:
        """Rates per currency unit and kWh, aligned with columns (without versions: with
        band_names)."""
        return [r for v in self.versions for r in v.own_rates]

    @property
    def rate_table(self) -> list[list[float]]:
        """Rate per version (rows) and band name (columns, band_names); a band that a
        version lacks never holds energy in it and shows that version's standard rate."""
        names = self.band_names
        table = []
        for v in self.versions:
            own = dict(zip(v.own_bands, v.own_rates, strict=True))
            table.append([own.get(b, v.rate) for b in names])
        return table

    @property
    def column_band(self) -> list[int]:
        """Index into band_names of each column's band."""
        names = self.band_names
        return [names.index(b) for _, b in self.columns]


class MachineCost(_Section):
    """[machine.cost]"""

    purchase: NonNeg
    salvage: NonNeg = 0.0
    life_hours: Positive
    depreciation_basis: Literal["run_hours", "job_hours"] = "run_hours"
    maintenance_per_run_hour: NonNeg = 0.0

    @model_validator(mode="after")
    def _salvage_below_purchase(self) -> MachineCost:
        if self.salvage > self.purchase:
            raise ValueError(f"salvage ({self.salvage}) must not exceed purchase ({self.purchase})")
        return self

    @property
    def depreciation_per_hour(self) -> float:
        """Machine-hour rate: (purchase - salvage) / life_hours."""
        return (self.purchase - self.salvage) / self.life_hours


class MachinePrice(_Section):
    """[pricing.machine.<id>] or [pricing.lists.<list>.<id>]: what a job on a machine costs
    the customer."""

    per_hour: NonNeg = 0.0
    hours: Literal["run_hours", "job_hours"] = "job_hours"  # which hours per_hour applies to
    setup_fee: NonNeg = 0.0  # once per job
    minimum: NonNeg = 0.0  # the least a job is charged (net)
    # Absent: energy is in the hourly price. Present: the job's energy cost is passed on,
    # times (1 + energy_markup); 0 passes it at cost.
    energy_markup: NonNeg | None = None


class Pricing(_Section):
    """[pricing]: the default price per machine, named price lists customers carry, VAT."""

    vat_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    machine: dict[str, MachinePrice] = {}
    lists: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")], dict[str, MachinePrice]
    ] = {}

    def rule(self, price_list: str, machine: str) -> MachinePrice | None:
        """The price of a job on `machine` for a customer with `price_list` ("" = default):
        the list's entry for the machine, else the default one, else None (no price)."""
        listed = self.lists.get(price_list, {}).get(machine)
        return listed or self.machine.get(machine)


class Meter(_Section):
    """[[machine.meter]]: a Modbus power meter the gateway polls (docs/modbus.md)."""

    id: Ident  # the reading's sensor id, unique in the shop
    model: str  # a shipped map (sdm630, sdm120, pzem004t, em24) or a path ending in .toml
    transport: Literal["tcp", "rtu"]
    host: str | None = None  # tcp only
    port: int | str | None = None  # tcp: TCP port (default 502); rtu: serial device path
    baudrate: Annotated[int, Field(ge=1200, le=921600)] = 9600  # rtu only, like parity/stopbits
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    device_id: Annotated[int, Field(ge=0, le=255)] = 1  # Modbus unit id
    poll_s: Positive = 5.0
    timeout_s: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 0.5  # per request
    retries: Annotated[int, Field(ge=0, le=5)] = 1  # extra attempts after a timeout
    backoff_max_s: Positive = 60.0  # longest wait between polls of a failing meter

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if not v.endswith(".toml") and v not in available_models():
            raise ValueError(
                f"unknown meter model; shipped: {', '.join(available_models())} "
                "(or give the path of a map file ending in .toml)"
            )
        return v

    @model_validator(mode="after")
    def _transport_settings(self) -> Meter:
        serial = {"baudrate", "parity", "stopbits"} & self.model_fields_set
        if self.transport == "tcp":
            if not self.host:
                raise ValueError("transport 'tcp' needs host")
            if not (self.port is None or (isinstance(self.port, int) and 0 < self.port < 65536)):
                raise ValueError(f"tcp port must be 1-65535, not {self.port!r}")
            if serial:
                raise ValueError(f"{', '.join(sorted(serial))}: rtu settings, this meter is tcp")
        else:
            if not isinstance(self.port, str) or not self.port:
                raise ValueError(
                    "transport 'rtu' needs port = the serial device "
                    f"(e.g. '/dev/ttyUSB0'), not {self.port!r}"
                )
            if self.host is not None:
                raise ValueError("host is a tcp setting, this meter is rtu")
            if not 1 <= self.device_id <= 247:
                raise ValueError(f"an RTU device_id is 1-247, not {self.device_id}")
        return self


class Sensor(_Section):
    """[[machine.sensor]]: a shopwatt sensor publishing over MQTT (docs/protocol.md)."""

    id: Ident  # the <sensor> segment of its topics, unique in the shop
    # Channels (0-based positions in the reading's `ch`) whose power and energy add up to
    # the machine's; empty = all of them. E.g. [0, 1, 2] for the three phases of one motor.
    channels: Annotated[list[Annotated[int, Field(ge=0, le=3)]], Field(max_length=4)] = []

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"a channel is listed twice: {v}")
        return v


# A shopwatt sensor counts in 1 mWh (docs/protocol.md, "Counters").
SENSOR_RESOLUTION_WH = 0.001


class Metered(_Section):
    """What a reading's id can name: a [[machine]] or a [[site_meter]], read from one
    [[<section>.sensor]] or one [[<section>.meter]] live, or from replayed CSV only."""

    SECTION: ClassVar[str]  # "machine" or "site_meter": names the sections in messages

    id: Ident
    # Its counter is checked against these: a step above rated_w x elapsed time (plus one
    # counter step) is an implausible jump, and no power is integrated across a longer gap.
    rated_w: Positive
    max_gap_s: Positive = 120.0
    # The smallest step of the energy counter, in Wh: a counter step may exceed
    # rated_w x elapsed time by this much. Unset, it comes from the source: the meter's
    # register map, SENSOR_RESOLUTION_WH for a shopwatt sensor, and 1 Wh for readings
    # that only come from CSV files (see _resolve_counter_resolution).
    counter_resolution_wh: Positive = 1.0
    meter: list[Meter] = []
    sensor: list[Sensor] = []

    @model_validator(mode="after")
    def _one_energy_source(self) -> Metered:
        # The engine differences ONE cumulative counter per id; two sources would
        # interleave two unrelated counters (docs/gateway.md, "One source per machine").
        sources = [f"meter {m.id}" for m in self.meter] + [f"sensor {s.id}" for s in self.sensor]
        if len(sources) > 1:
            # The key before this message names the section: "machine[0] (id=...)".
            s = self.SECTION
            raise ValueError(
                f"{len(sources)} energy sources ({', '.join(sources)}); "
                f"this version takes one [[{s}.sensor]] or one [[{s}.meter]] per {s}"
            )
        return self


class Machine(Metered):
    """[[machine]]"""

    SECTION = "machine"

    name: str = ""
    off_below_w: NonNeg
    run_above_w: Positive
    min_job_s: NonNeg = 60.0
    merge_gap_s: NonNeg = 300.0
    cost: MachineCost

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Machine:
        if self.run_above_w <= self.off_below_w:
            raise ValueError(
                f"run_above_w ({self.run_above_w}) must be above off_below_w ({self.off_below_w})"
            )
        if self.rated_w < self.run_above_w:
            raise ValueError(
                f"rated_w ({self.rated_w}) must be at least run_above_w ({self.run_above_w})"
            )
        return self


class SiteMeter(Metered):
    """[[site_meter]]: a meter that belongs to no machine (docs/tariffs.md, "Site meter").

    Its id is the machine column of its readings in a replayed CSV, the machine segment of
    its sensor's topics and its ReadingStore key; it has no jobs and no machine_state.
    """

    SECTION = "site_meter"

    # grid: the utility's connection point, whose 15-minute averages set the demand peak;
    # production: the shop's own solar (an inverter or its meter), used by the machines first.
    role: Literal["grid", "production"]


class InfluxDB(_Section):
    """[influxdb]: where the outbox drains to (docs/influxdb.md).

    The token (or, with username, the password) is never in this file: it is read from
    secret_file or from the environment variable named by secret_env.
    """

    url: Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]
    api: Literal["v1", "v2"] = "v1"  # v1: POST /write (1.x, 2.x DBRP, 3.x); v2: /api/v2/write
    database: str = ""  # v1: the database (2.x: mapped by DBRP)
    retention_policy: str = ""  # v1: empty = the database's default
    bucket: str = ""  # v2 (InfluxDB 1.8+: "database/retention_policy")
    org: str = ""  # v2
    username: str = ""  # set for 1.x user/password auth; empty = token auth
    secret_file: str = ""  # relative to this config file
    secret_env: str = ""
    gzip: bool = False
    timeout_s: Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)] = 10.0
    batch_lines: Annotated[int, Field(ge=1, le=100_000)] = 5000
    outbox_max_mb: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 512.0
    backoff_max_s: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 60.0
    # A `demand_warning` point when the running 15-minute average site power reaches this
    # share of the month's peak so far (docs/tariffs.md); 0 writes none.
    demand_warning: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.9

    @model_validator(mode="after")
    def _target_and_secret(self) -> InfluxDB:
        if self.api == "v1" and not self.database:
            raise ValueError("api 'v1' needs database")
        if self.api == "v2" and not self.bucket:
            raise ValueError("api 'v2' needs bucket")
        if self.secret_file and self.secret_env:
            raise ValueError("give secret_file or secret_env, not both")
        if self.username and not (self.secret_file or self.secret_env):
            raise ValueError(f"username {self.username!r} needs secret_file or secret_env")
        return self


class Mqtt(_Section):
    """[mqtt]: the broker the sensors publish to (docs/gateway.md).

    The password is never in this file: it is read from secret_file or from the
    environment variable named by secret_env.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    # Fixed, so the broker keeps the gateway's session (and queues readings) while it is away.
    client_id: Ident = "shopwatt-gateway"
    username: str = ""
    secret_file: str = ""  # relative to this config file
    secret_env: str = ""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60
    # TLS (docs/security.md): the broker's certificate and host name are always verified;
    # there is deliberately no key to turn that off. Paths are relative to this file.
    # Strict: TOML has true/false, and a quoted "no" must not switch TLS on.
    tls: StrictBool = False  # a TLS listener usually listens on 8883; set port too
    ca_file: str = ""  # PEM CA(s) to trust; empty = the system's CA store
    cert_file: str = ""  # PEM client certificate, for brokers that require one
    key_file: str = ""  # its private key: a file only its owner can read (chmod 600)
    # Readings are committed (ledger + outbox) and acknowledged to the broker in batches.
    batch_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 2.0
    reconnect_max_s: Annotated[int, Field(ge=1, le=3600)] = 60

    @model_validator(mode="after")
    def _credentials(self) -> Mqtt:
        if self.secret_file and self.secret_env:
            raise ValueError("give secret_file or secret_env, not both")
        if self.username and not (self.secret_file or self.secret_env):
            raise ValueError(f"username {self.username!r} needs secret_file or secret_env")
        if (self.secret_file or self.secret_env) and not self.username:
            raise ValueError("a password (secret_file/secret_env) needs username")
        for key in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, key)
            if value and not self.tls:
                raise ValueError(f"{key} = {value!r} needs tls = true")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError(
                f"a client certificate needs both cert_file and key_file "
                f"(cert_file = {self.cert_file!r}, key_file = {self.key_file!r})"
            )
        return self


class ShopConfig(_Section):
    """The whole shop.toml."""

    site: Site
    storage: Storage = Storage()
    tariff: Tariff
    machine: Annotated[list[Machine], Field(min_length=1)]
    site_meter: list[SiteMeter] = []
    influxdb: InfluxDB | None = None
    mqtt: Mqtt | None = None
    pricing: Pricing = Pricing()

    _source: Path = PrivateAttr(default=Path("shop.toml"))

    @field_validator("machine")
    @classmethod
    def _unique_ids(cls, v: list[Machine]) -> list[Machine]:
        ids = [m.id for m in v]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"machine ids must be unique, repeated: {sorted(dup)}")
        # A sensor id is the reading's identity (dedup, InfluxDB `sensor` tag) shop-wide.
        # (Meter ids among themselves: the Modbus input checks them, naming both meters.)
        sensors = [s.id for m in v for s in m.sensor]
        meters = {s.id for m in v for s in m.meter}
        dup = {i for i in sensors if sensors.count(i) > 1 or i in meters}
        if dup:
            raise ValueError(f"sensor ids must be unique (also among meter ids): {sorted(dup)}")
        return v

    @model_validator(mode="after")
    def _priced_machines_exist(self) -> ShopConfig:
        ids = {m.id for m in self.machine}
        tables = {"pricing.machine": self.pricing.machine} | {
            f"pricing.lists.{name}": table for name, table in self.pricing.lists.items()
        }
        for where, table in tables.items():
            unknown = sorted(set(table) - ids)
            if unknown:
                raise ValueError(f"{where}.{unknown[0]}: not a machine id (known: {sorted(ids)})")
        return self

    @model_validator(mode="after")
    def _site_meter_ids(self) -> ShopConfig:
        # A site meter's id shares the readings' id space with machines (CSV, ReadingStore);
        # its sensor's or meter's id is a reading's source shop-wide, as a machine's is.
        # (Not self.machines: a cached_property computed here would survive model_copy.)
        sources = {s.id for m in self.machine for s in m.sensor}
        sources |= {s.id for m in self.machine for s in m.meter}
        taken = {m.id for m in self.machine} | sources
        for i, meter in enumerate(self.site_meter):
            if meter.id in taken:
                raise ValueError(
                    f"site_meter[{i}].id = {meter.id!r}: already a machine, sensor or meter id"
                )
            taken.add(meter.id)
            own = [(f"sensor[{j}].id", s.id) for j, s in enumerate(meter.sensor)]
            own += [(f"meter[{j}].id", m.id) for j, m in enumerate(meter.meter)]
            for key, source in own:
                if source in sources:
                    raise ValueError(
                        f"site_meter[{i}].{key} = {source!r}: already a sensor or meter id"
                    )
                sources.add(source)
                taken.add(source)
        roles = [m.role for m in self.site_meter]
        for role in set(roles):
            if roles.count(role) > 1:
                raise ValueError(f"site_meter: {roles.count(role)} meters with role = {role!r}")
        return self

    @property
    def grid_meter(self) -> SiteMeter | None:
        """The [[site_meter]] with role "grid", if any."""
        return next((m for m in self.site_meter if m.role == "grid"), None)

    @property
    def production_meter(self) -> SiteMeter | None:
        """The [[site_meter]] with role "production", if any."""
        return next((m for m in self.site_meter if m.role == "production"), None)

    @property
    def metered(self) -> dict[str, Metered]:
        """Everything a reading can belong to by id: machines, then site meters."""
        return {**self.machines, **{m.id: m for m in self.site_meter}}

    @property
    def source(self) -> Path:
        """The file this config was loaded from."""
        return self._source

    @property
    def storage_dir(self) -> Path:
        """Ledger and outbox folder; a relative path is relative to the config file."""
        p = Path(self.storage.path).expanduser()
        return p if p.is_absolute() else self._source.parent / p

    @property
    def own_files(self) -> list[Path]:
        """shop.toml, the ledger and the outbox with SQLite's journals: never an output."""
        dbs = (self.storage_dir / LEDGER_FILE, self.storage_dir / OUTBOX_FILE)
        return [self.source, *(db.with_name(db.name + s) for db in dbs for s in _SQLITE_FILES)]

    @cached_property
    def machines(self) -> dict[str, Machine]:
        """Machines by id, in config order."""
        return {m.id: m for m in self.machine}


M = TypeVar("M", bound=Metered)


def _resolved(items: list[M], section: str, cfg: ShopConfig, source: Path) -> list[M]:
    """Each item's counter_resolution_wh from its source, unless shop.toml sets it.

    A meter's map states its counter's step (an EM24 counts in 0.1 kWh); a value set in
    shop.toml may only make it coarser, never finer than the meter can count.
    """
    out = []
    for i, m in enumerate(items):
        if m.meter:
            meter = m.meter[0]
            step = load_map(map_path(meter.model, cfg.source.parent)).counter_resolution_wh
        else:
            step = SENSOR_RESOLUTION_WH if m.sensor else m.counter_resolution_wh
        if "counter_resolution_wh" not in m.model_fields_set:
            m = m.model_copy(update={"counter_resolution_wh": step})
        elif m.counter_resolution_wh < step and m.meter:
            raise ConfigError(
                f"{source}: {section}[{i}] (id={m.id}).counter_resolution_wh = "
                f"{m.counter_resolution_wh}: finer than meter {m.meter[0].id} counts "
                f"({m.meter[0].model}: {step} Wh)"
            )
        out.append(m)
    return out


def _resolve_counter_resolution(cfg: ShopConfig, source: Path) -> ShopConfig:
    """Every machine's and site meter's counter_resolution_wh from its source (_resolved)."""
    resolved = cfg.model_copy(
        update={
            "machine": _resolved(cfg.machine, "machine", cfg, source),
            "site_meter": _resolved(cfg.site_meter, "site_meter", cfg, source),
        }
    )
    resolved._source = cfg.source
    return resolved


def parse_config(data: dict[str, Any], source: Path) -> ShopConfig:
    """Validate an already-parsed shop.toml document."""
    cfg = validate_model(ShopConfig, data, source)
    cfg._source = source.resolve()
    return _resolve_counter_resolution(cfg, source)


def load_config(path: str | Path) -> ShopConfig:
    """Read and validate shop.toml; raises ConfigError naming file, key and value."""
    source = Path(path)
    return parse_config(read_toml(source, "config file"), source)
