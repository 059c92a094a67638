"""Panel shapes the four dashboards share, built with the foundation SDK.

Each helper returns the SDK builder with the data source, size, queries and units set,
so a board module only says what a panel shows and where. Values a panel reduces to one
number use the last non-null value: that is the latest point for a live value and the
single row for a range total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    piechart,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as pie_model

from gateway.engine.states import IDLE, OFF, RUNNING
from gateway.outputs.schema import STATE_NAMES
from grafana.influxql import Query, datasource
from grafana.queries import energy

# Panel-level time ranges (Grafana's "relative time" override); the dashboard picker
# still drives every other panel.
TODAY = "now/d"
THIS_MONTH = "now/M"
LAST_5_MIN = "5m"
LAST_7_DAYS = "7d"


@dataclass(frozen=True)
class Period:
    """A panel-level range an owner thinks in: its title word, its wording, Grafana's range."""

    title: str  # "today"
    since: str  # "since midnight"
    time_from: str  # "now/d"


PERIODS = (
    Period("today", "since midnight", TODAY),
    Period("this month", "since the 1st of the month", THIS_MONTH),
)

KW, W, KWH, PERCENT, DBM, SECONDS = "kwatt", "watt", "kwatth", "percent", "dBm", "s"
SINCE = "dateTimeFromNow"  # an epoch-ms value shown as "3 minutes ago"
WHEN = "dateTimeAsIso"  # an epoch-ms value shown as a local date and time
COUNT = "short"

# Grafana's own currency units; any other ISO code is shown as a suffix.
_CURRENCY_UNITS = {c: f"currency{c}" for c in ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK")}
_STATE_COLORS = {OFF: "text", IDLE: "yellow", RUNNING: "green"}

AnyPanel = TypeVar(
    "AnyPanel",
    stat.Panel,
    timeseries.Panel,
    statetimeline.Panel,
    table.Panel,
    bargauge.Panel,
    barchart.Panel,
    piechart.Panel,
)


def currency_unit(code: str) -> str:
    """The Grafana unit for money in the site's currency (shop.toml [site].currency)."""
    return _CURRENCY_UNITS.get(code, f"suffix: {code}")


def named(query: Query) -> Query:
    """The query with its columns' names as series names unless it has an alias.

    Grafana names an InfluxQL series `measurement.column` by default; `$col` makes it the
    column alone, so a unit override can match it by the name the query gives it.
    """
    return query if query.build().alias else query.alias("$col")


def place(
    panel: AnyPanel, title: str, description: str, w: int, h: int, *queries: Query
) -> AnyPanel:
    """Title, description, size and the queries (A, B, ...) against the provisioned source."""
    panel.title(title).description(description).datasource(datasource()).span(w).height(h)
    for letter, query in zip("ABCDEFGH", queries, strict=False):
        panel.with_target(query.ref_id(letter))
    return panel


def _last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    """Colours from a value up: (None, base colour), (limit, colour), ..."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


def neutral() -> dash.ThresholdsConfig:
    """One colour for every value: a quantity, neither good nor bad."""
    return _thresholds((None, "blue"))


def zero_is_good() -> dash.ThresholdsConfig:
    """Green at 0, red from 1: counts of lost or refused data."""
    return _thresholds((None, "green"), (1, "red"))


def big_number(
    title: str,
    description: str,
    query: Query,
    unit: str,
    *,
    w: int = 4,
    h: int = 4,
    time_from: str | None = None,
    thresholds: dash.ThresholdsConfig | None = None,
) -> stat.Panel:
    """One or a few numbers (each column of the query is a value)."""
    panel = place(stat.Panel(), title, description, w, h, named(query))
    panel.unit(unit).reduce_options(_last()).thresholds(thresholds or neutral())
    panel.graph_mode(common.BigValueGraphMode.NONE).color_mode(common.BigValueColorMode.VALUE)
    if time_from:
        panel.time_from(time_from)
    return panel


def per_machine_bars(
    title: str,
    description: str,
    query: Query,
    unit: str,
    *,
    w: int = 8,
    h: int = 8,
    time_from: str | None = None,
    max_value: float | None = None,
) -> bargauge.Panel:
    """A horizontal bar per machine (the query groups by machine)."""
    panel = place(bargauge.Panel(), title, description, w, h, query.alias("$tag_machine"))
    panel.unit(unit).reduce_options(_last()).orientation(common.VizOrientation.HORIZONTAL)
    panel.display_mode(common.BarGaugeDisplayMode.BASIC).min(0).thresholds(neutral())
    if max_value is not None:
        panel.max(max_value)
    if time_from:
        panel.time_from(time_from)
    return panel


def state_timeline(
    title: str, description: str, query: Query, *, w: int = 24, h: int = 8
) -> statetimeline.Panel:
    """Off / idle / running over time, a row per machine; a gap where the sensor was silent."""
    options = {
        str(code): model.ValueMappingResult(text=name, color=_STATE_COLORS[code], index=code)
        for code, name in STATE_NAMES.items()
    }
    panel = place(statetimeline.Panel(), title, description, w, h, query.alias("$tag_machine"))
    # The gateway writes a state point at least once a minute: a finer bucket would show
    # gaps that are not there.
    panel.interval("1m").mappings([model.ValueMap(options=options)]).merge_values(True)
    panel.show_value(common.VisibilityMode.NEVER).color_scheme(
        dash.FieldColor().mode(model.FieldColorModeId.FIXED).fixed_color("text")
    )
    return panel


def time_series(
    title: str, description: str, query: Query, unit: str, *, w: int = 24, h: int = 8
) -> timeseries.Panel:
    """Lines over time, one per series of the query."""
    panel = place(timeseries.Panel(), title, description, w, h, named(query))
    panel.unit(unit).fill_opacity(10).span_nulls(False).thresholds(neutral())
    return panel


def rows_table(
    title: str,
    description: str,
    query: Query,
    *,
    w: int = 24,
    h: int = 10,
    time_from: str | None = None,
) -> table.Panel:
    """One row per point or group (format table)."""
    panel = place(table.Panel(), title, description, w, h, query.format("table"))
    panel.filterable(True).thresholds(neutral())
    if time_from:
        panel.time_from(time_from)
    return panel


def newest_first(panel: table.Panel, column: str = "End") -> table.Panel:
    """Sort a table by a time column, latest on top (the jobs an owner asks about)."""
    return panel.sort_by([common_builders.TableSortByFieldState().display_name(column).desc(True)])


def totals(panel: table.Panel, columns: list[str]) -> table.Panel:
    """A footer row with the sum of these columns (what the selected jobs add up to)."""
    footer = common_builders.TableFooterOptions().show(True).reducer(["sum"]).fields(columns)
    return panel.footer(footer)


def unit_override(panel: AnyPanel, column: str, unit: str, *, right_axis: bool = False) -> AnyPanel:
    """Show one column in its own unit (money next to kWh), on its own axis if asked."""
    properties = [model.DynamicConfigValue(id_val="unit", value=unit)]
    if right_axis:
        properties.append(model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"))
    panel.override_by_name(column, properties)
    return panel


def online_mapping(panel: AnyPanel, column: str) -> AnyPanel:
    """A sensor's online flag (its MQTT last will) as a green "online" / red "offline"."""
    options = {
        "true": model.ValueMappingResult(text="online", color="green", index=0),
        "false": model.ValueMappingResult(text="offline", color="red", index=1),
    }
    panel.override_by_name(
        column,
        [
            model.DynamicConfigValue(id_val="mappings", value=[model.ValueMap(options=options)]),
            model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
        ],
    )
    return panel


def organize(renames: dict[str, str], hide: tuple[str, ...] = ()) -> model.DataTransformerConfig:
    """Rename columns to words an owner reads, hide the technical ones, keep the order."""
    order = {name: i for i, name in enumerate(renames)}
    return model.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(hide, True),
            "indexByName": order,
            "renameByName": renames,
        },
    )


def group_by(key: str, sums: tuple[str, ...]) -> model.DataTransformerConfig:
    """Grafana-side group-by: InfluxQL cannot group by a field (customer is one)."""
    fields: dict[str, object] = {key: {"aggregations": [], "operation": "groupby"}}
    fields |= {f: {"aggregations": ["sum"], "operation": "aggregate"} for f in sums}
    return model.DataTransformerConfig(id_val="groupBy", options={"fields": fields})


def bar_chart(
    title: str,
    description: str,
    query: Query,
    unit: str,
    x_field: str,
    *,
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    time_from: str | None = None,
) -> barchart.Panel:
    """Bars of table rows, labelled by `x_field`."""
    panel = place(barchart.Panel(), title, description, w, h, query.format("table"))
    panel.unit(unit).x_field(x_field).orientation(common.VizOrientation.HORIZONTAL)
    panel.show_value(common.VisibilityMode.AUTO).thresholds(neutral())
    if stacked:
        panel.stacking(common.StackingMode.NORMAL)
    if time_from:
        panel.time_from(time_from)
    return panel


def pie(
    title: str, description: str, query: Query, unit: str, *, w: int = 8, h: int = 8
) -> piechart.Panel:
    """Shares of a whole, one slice per series (e.g. per tariff band)."""
    panel = place(piechart.Panel(), title, description, w, h, query)
    panel.unit(unit).reduce_options(_last()).pie_type(pie_model.PieChartType.DONUT)
    return panel


def energy_and_cost(period: Period, currency: str, *conditions: str) -> stat.Panel:
    """kWh and their cost over a period (today, this month)."""
    panel = big_number(
        period.title.capitalize(),
        f"Energy used {period.since}, and what it cost at the tariff's rates.",
        Query(energy(*conditions)),
        KWH,
        w=6,
        h=5,
        time_from=period.time_from,
    )
    return unit_override(panel, "cost", currency_unit(currency))
