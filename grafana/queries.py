"""The dashboards' InfluxQL, in one place, built on the gateway's schema (docs/influxdb.md).

Portable InfluxQL only (1.x, 2.x, 3.x): no Flux, no INTEGRAL(), no SHOW DATABASES.
The gateway computes energy, cost and states itself; these queries only SUM, MEAN, MAX
or LAST what it wrote, plus arithmetic on the result (x 4 for a quarter hour's kW,
x 100 for a percentage). Measurement names come from gateway/outputs/schema.py, so a
renamed measurement breaks the generator, not a dashboard in the field.

Grafana fills in `$timeFilter`, `$__interval` and the variables `$site` and `$machine`;
variables are matched as regexes (`=~ /^$machine$/`), the form that works for one value,
several values and "All" alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.engine.states import IDLE, OFF, RUNNING
from gateway.outputs.schema import DEMAND, ENERGY, JOB, MACHINE_STATE, POWER, SITE_POWER

SITE = '"site" =~ /^$site$/'
MACHINE = '"machine" =~ /^$machine$/'
MODBUS = '"source" =~ /^modbus:/'  # the Modbus input names its sources modbus:<bus>/<id>
TIME = "$timeFilter"
BUCKET = "time($__interval)"

# Utilisation counts a minute as running when floor(code / RUNNING) is 1, which holds for
# exactly the running state while the other codes are below it.
if not 0 <= min(OFF, IDLE) <= max(OFF, IDLE) < RUNNING:
    raise RuntimeError(f"state codes changed (off {OFF}, idle {IDLE}, running {RUNNING})")


def where(*conditions: str) -> str:
    """A WHERE clause: the conditions and the dashboard's time range."""
    return "WHERE " + " AND ".join([*conditions, TIME])


def group_by(keys: Sequence[str]) -> str:
    """` GROUP BY ...` of time buckets (already formatted) and tag keys (quoted here)."""
    if not keys:
        return ""
    return " GROUP BY " + ", ".join(k if k.startswith("time(") else f'"{k}"' for k in keys)


def calls(function: str, fields: Mapping[str, str]) -> dict[str, str]:
    """{label: 'function("field")'} for {field: label}: one aggregate per field."""
    return {label: f'{function}("{field}")' for field, label in fields.items()}


def select(
    columns: Mapping[str, str],
    source: str,
    conditions: Sequence[str],
    by: Sequence[str] = (),
) -> str:
    """SELECT columns ({label: expression}) FROM a measurement or a "(subquery)"."""
    cols = ", ".join(f'{expr} AS "{label}"' for label, expr in columns.items())
    src = source if source.startswith("(") else f'"{source}"'
    return f"SELECT {cols} FROM {src} {where(*conditions)}{group_by(by)}"


def raw(fields: Sequence[str], measurement: str, conditions: Sequence[str]) -> str:
    """The points themselves (one row each, e.g. one per job), with their machine."""
    cols = ", ".join(f'"{f}"' for f in fields)
    return f'SELECT {cols} FROM "{measurement}" {where(*conditions)} GROUP BY "machine"'


def tag_values(key: str, *conditions: str) -> str:
    """A template variable's values: tag `key` of the power points (every machine has some)."""
    condition = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f'SHOW TAG VALUES FROM "{POWER}" WITH KEY = "{key}"{condition}'


def power_now_kw(*conditions: str, per_machine: bool = True) -> str:
    """kW now: the last reading of each sensor, added up per machine (or for the shop)."""
    last = select({"w": 'last("watts")'}, POWER, conditions, ["machine", "sensor"])
    return select({"kW": 'sum("w") / 1000'}, f"({last})", [], ["machine"] if per_machine else [])


def power_w(*conditions: str) -> str:
    """Mean power per sensor per time bucket, W (replayed history has no sensor tag)."""
    return select({"W": 'mean("watts")'}, POWER, conditions, [BUCKET, "machine", "sensor"])


def site_power_kw(*conditions: str) -> str:
    """Mean power of each site meter per time bucket, kW, by its role (grid, production)."""
    return select({"kW": 'mean("watts") / 1000'}, SITE_POWER, conditions, [BUCKET, "role"])


def states(*conditions: str) -> str:
    """The state code per machine per time bucket (its last point in the bucket)."""
    return select({"state": 'last("code")'}, MACHINE_STATE, conditions, [BUCKET, "machine"])


def energy(*conditions: str, by: Sequence[str] = ()) -> str:
    """kWh and energy cost in the range, from the per-minute, per-band `energy` points."""
    return select(calls("sum", {"kwh": "kWh", "cost": "cost"}), ENERGY, conditions, by)


def utilisation_pct(*conditions: str) -> str:
    """% of the minutes with a known state in which the machine ran, per machine.

    Each minute's state is its last point (the gateway writes at least one a minute);
    minutes without a point (sensor silent) count neither way.
    """
    running = f'floor(last("code") / {RUNNING})'
    minutes = select({"running": running}, MACHINE_STATE, conditions, ["time(1m)", "machine"])
    return select({"utilisation": 'mean("running") * 100'}, f"({minutes})", [], ["machine"])


def demand_kw(*conditions: str) -> str:
    """15-minute demand: a quarter hour's kWh x 4 is its mean kW (what utilities bill)."""
    return select({"kW": 'sum("kwh") * 4'}, ENERGY, conditions, ["time(15m)"])


def peak_demand_kw(*conditions: str) -> str:
    """The highest 15-minute demand in the range."""
    return select({"peak": 'max("kW")'}, f"({demand_kw(*conditions)})", [])


def live_demand_kw(*conditions: str) -> str:
    """The gateway's own `demand` points: the running 15-minute average and the month's
    peak so far, as `shopwatt run` writes them."""
    columns = {"running": 'last("running_kw")', "peak so far": 'last("peak_kw")'}
    return select(columns, DEMAND, conditions, [BUCKET])


def job_events(*conditions: str) -> str:
    """Job ends for annotations: the job id as the text, the customer as a tag."""
    return f'SELECT "job_id", "customer" FROM "{JOB}" {where(*conditions)}'
