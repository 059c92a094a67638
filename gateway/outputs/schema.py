"""The InfluxDB schema (docs/influxdb.md): what each gateway record becomes in line protocol.

Pure functions, arrays and records in, lines out. Every point carries the `site` tag;
`machine`, `sensor`, `band`, `source`, `member` and `role` are the only other tags (bounded
by the shop's config and its member list), and ids that grow without bound (job ids,
customers) are fields. A point is identified by its series and its millisecond
timestamp, so writing the same record twice overwrites it instead of counting it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from gateway.config import Machine, Tariff
from gateway.engine.demand import LiveDemand
from gateway.engine.drawdown import SCALE
from gateway.engine.model import F64, I64, MachineReadings, Reading, Stats
from gateway.engine.states import IDLE, OFF, RUNNING, machine_states
from gateway.ledger.membership import Balance
from gateway.ledger.rows import LedgerRow
from gateway.outputs.lineprotocol import FieldValue, float_lines, format_field, line, series_key

POWER = "power"
SITE_POWER = "site_power"
MACHINE_STATE = "machine_state"
JOB = "job"
OVERHEAD = "overhead"
ENERGY = "energy"
GATEWAY = "gateway"
SENSOR = "sensor"
SOURCE = "source"
MEMBER = "member"
DEMAND = "demand"
DEMAND_WARNING = "demand_warning"

# machine_state codes are the engine's; a Grafana state timeline maps them to colours.
STATE_NAMES = {OFF: "off", IDLE: "idle", RUNNING: "running"}
STATE_EVERY_MS = 60_000


# The shop's few sources, each asked for with every live batch: escaped once.
@lru_cache(maxsize=1024)
def power_key(site: str, machine: str, sensor: str, role: str | None = None) -> str:
    """The series of a source's readings: `power` of a machine's sensor, or with the role
    of a site meter (grid, production) `site_power`, apart so that a sum over `power`
    never counts the grid meter, which sees the machines too."""
    if role is None:
        return series_key(POWER, {"site": site, "machine": machine, "sensor": sensor})
    return series_key(SITE_POWER, {"site": site, "role": role, "sensor": sensor})


def power_lines(
    site: str, machine: str, sensor: str, t_ms: I64, watts: F64, wh: F64, role: str | None = None
) -> list[str]:
    """`power` (or a site meter's `site_power`) points of one sensor: watts and the
    cumulative Wh counter (NaN: left out)."""
    return float_lines(power_key(site, machine, sensor, role), t_ms, {"watts": watts, "wh": wh})


def batch_power_lines(
    site: str,
    batches: Mapping[str, MachineReadings],
    sources: Mapping[str, str],
    roles: Mapping[str, str],
) -> list[str]:
    """power_lines() of every source of a live batch at once (machine -> readings, its
    sensor or meter in `sources`, site meters' roles in `roles`): a batch holds a reading
    or two per source, and formatting each source apart costs more than its lines."""
    if not batches:
        return []
    every = list(batches.values())
    keys = [power_key(site, m, sources[m], roles.get(m)) for m in batches]
    return float_lines(
        [k for k, r in zip(keys, every, strict=True) for _ in range(len(r))],
        np.concatenate([r.t_ms for r in every]),
        {
            "watts": np.concatenate([r.watts for r in every]),
            "wh": np.concatenate([r.wh for r in every]),
        },
    )


def reading_lines(
    site: str, readings: Iterable[Reading], roles: Mapping[str, str] | None = None
) -> list[str]:
    """`power` points from live readings (`site_power` for the site meters in roles, by
    id); a value the reading lacks is left out of it."""
    keys: dict[tuple[str, str], str] = {}
    out: list[str] = []
    for r in readings:
        k = keys.get((r.machine, r.sensor))
        if k is None:
            role = (roles or {}).get(r.machine)
            k = keys[(r.machine, r.sensor)] = power_key(site, r.machine, r.sensor, role)
        fields = {"watts": r.watts, "wh": r.wh}
        text = ",".join(
            f"{name}={v}"
            for name, value in fields.items()
            if value is not None and (v := format_field(value)) is not None
        )
        if text:
            out.append(f"{k} {text} {r.t_ms}")
    return out


def state_lines(
    site: str, machine: Machine, t_ms: I64, watts: F64, every_ms: int = STATE_EVERY_MS
) -> list[str]:
    """`machine_state` points from power: at every change, and at each interval's first reading.

    States are the engine's (off/idle/running by the machine's thresholds). The extra
    point per interval lets a dashboard take LAST(code) per time bucket without
    fill(previous); a bucket without readings stays empty (the sensor was silent) instead
    of repeating a state nobody saw. A reading without power (NaN) has no state.
    """
    known = ~np.isnan(watts)
    t, codes = t_ms[known], machine_states(watts[known], machine)
    bucket = t // every_ms
    emit = np.ones(len(codes), dtype=bool)
    emit[1:] = (codes[1:] != codes[:-1]) | (bucket[1:] != bucket[:-1])
    key = series_key(MACHINE_STATE, {"site": site, "machine": machine.id})
    return [
        f'{key} code={c}i,state="{STATE_NAMES[c]}" {ti}'
        for c, ti in zip(codes[emit].tolist(), t[emit].tolist(), strict=True)
    ]


def cost_lines(site: str, rows: Iterable[LedgerRow], band_names: Sequence[str]) -> list[str]:
    """`job` points (finished jobs, at their end) and `overhead` points (per local day).

    Each figure is the one the export prints for the row: kWh to the Wh, hours to four
    decimals, money in the ledger's cents (`total_cost` is the sum of the three rounded
    costs), so Grafana and the accountant's sheet show the same numbers, and a sum of
    floats never reaches InfluxDB as 1.6900000000000002. Open jobs are left out: their
    end, hence their timestamp, is not known yet, and a point written now would stay
    behind as a second copy once the job ends.
    """
    out: list[str] = []
    for row in rows:
        if row.open:
            continue
        printed = {k: float(v) for k, v in row.amounts.printed(band_names).items()}
        # An overhead row has no costs of its own beside energy, nor hours worth a point.
        fields: dict[str, FieldValue] = {
            k: v for k, v in printed.items() if k == "energy_kwh" or k.startswith("kwh_")
        }
        fields["energy_cost"] = printed["energy_cost"]
        tags = {"site": site, "machine": row.machine}
        if row.kind == "overhead":
            fields["day"] = row.day.isoformat()
            text = line(OVERHEAD, tags, fields, row.start_ms)
        else:
            fields |= printed | {
                "job_id": row.job_id,
                "customer": row.customer,
                "start_ms": row.start_ms,
            }
            text = line(JOB, tags, fields, row.end_ms)
        if text is not None:
            out.append(text)
    return out


def energy_lines(
    site: str, machine: str, t_ms: I64, band_wh: F64, band_cost: F64, tariff: Tariff
) -> list[str]:
    """`energy` points: kWh and cost per tariff band per interval (t_ms: interval starts).

    band_wh and band_cost (the engine's, engine/live.py) have one row per interval and one
    column per Tariff.band_names. A band is written where it has energy, and each interval
    writes at least its main band (zero when the machine was off), so SUM() over any time
    range gives kWh and cost directly.
    """
    main = np.argmax(band_wh, axis=1)
    emit = band_wh != 0.0
    emit[np.arange(len(main)), main] = True
    rows, bands = np.nonzero(emit)
    kwh = band_wh[rows, bands] / 1000.0
    cost = band_cost[rows, bands]
    keys = [
        series_key(ENERGY, {"site": site, "machine": machine, "band": b}) for b in tariff.band_names
    ]
    return [
        f"{keys[b]} kwh={k!r},cost={c!r} {t}"
        for b, k, c, t in zip(
            bands.tolist(), kwh.tolist(), cost.tolist(), t_ms[rows].tolist(), strict=True
        )
    ]


def gateway_line(site: str, t_ms: int, fields: Mapping[str, FieldValue]) -> str | None:
    """One `gateway` health point (counters, outbox depth/age, ...; see docs)."""
    return line(GATEWAY, {"site": site}, fields, t_ms)


def sensor_line(
    site: str, machine: str, sensor: str, t_ms: int, fields: Mapping[str, FieldValue]
) -> str | None:
    """One `sensor` health point (last seen, rssi, rejected, ...; see docs)."""
    return line(SENSOR, {"site": site, "machine": machine, "sensor": sensor}, fields, t_ms)


def source_lines(site: str, t_ms: int, stats: Stats) -> list[str]:
    """`source` health points: each input source's counters (Input.stats())."""
    out = (line(SOURCE, {"site": site, "source": s}, dict(c), t_ms) for s, c in stats.items())
    return [text for text in out if text is not None]


def member_lines(site: str, t_ms: int, balances: Iterable[Balance]) -> list[str]:
    """`member` points: each member's prepaid credits left, those expiring soon, low or not."""
    out = (
        line(
            MEMBER,
            {"site": site, "member": b.member},
            {
                "balance_credits": b.balance / SCALE,
                "expiring_credits": b.expiring / SCALE,
                "low": b.low,
            },
            t_ms,
        )
        for b in balances
    )
    return [text for text in out if text is not None]


def demand_lines(site: str, d: LiveDemand, warn_at: float) -> list[str]:
    """The `demand` point (the month's peak so far, the running 15-minute average) and,
    when the running average reaches warn_at of the peak, a `demand_warning` point."""
    fields: dict[str, FieldValue] = {
        "peak_kw": float(d.peak_kw),
        "running_kw": float(d.running_kw),
    }
    if d.peak_start_ms is not None:
        fields["peak_start_ms"] = d.peak_start_ms
    out = [line(DEMAND, {"site": site}, fields, d.at_ms)]
    if d.warns(warn_at):
        share = {"share": round(d.running_wh / d.peak_wh, 3)}
        out.append(line(DEMAND_WARNING, {"site": site}, fields | share, d.at_ms))
    return [text for text in out if text is not None]
