"""Shop overview: what runs now, what it cost today and this month, the demand peak."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from gateway.outputs.schema import ENERGY
from grafana import panels as p
from grafana.board import new_board, site_variable
from grafana.influxql import Query
from grafana.queries import (
    SITE,
    demand_kw,
    live_demand_kw,
    peak_demand_kw,
    power_now_kw,
    select,
    site_power_kw,
    states,
    utilisation_pct,
)

UID = "shopwatt-overview"


def build(currency: str) -> dash.Dashboard:
    """The shop overview dashboard."""
    board = new_board(
        UID,
        "Shop overview",
        "Every machine at a glance: power now, states, utilisation, energy, cost and demand.",
        p.TODAY,
        [site_variable()],
    )
    for period in p.PERIODS:
        board.with_panel(p.energy_and_cost(period, currency, SITE))
    board.with_panel(
        p.big_number(
            "Peak 15-min demand this month",
            "The highest mean power of any quarter hour this month: what a demand charge bills.",
            Query(peak_demand_kw(SITE)),
            p.KW,
            w=6,
            h=5,
            time_from=p.THIS_MONTH,
        )
    )
    board.with_panel(
        p.big_number(
            "Shop power now",
            "All machines together, from each sensor's latest reading of the last 5 minutes.",
            Query(power_now_kw(SITE, per_machine=False)),
            p.KW,
            w=6,
            h=5,
            time_from=p.LAST_5_MIN,
        )
    )
    board.with_panel(
        p.per_machine_bars(
            "Power now",
            "Each machine, from its sensors' latest readings of the last 5 minutes; "
            "a machine missing here has not reported for 5 minutes.",
            Query(power_now_kw(SITE)),
            p.KW,
            time_from=p.LAST_5_MIN,
        )
    )
    for period in p.PERIODS:
        board.with_panel(
            p.per_machine_bars(
                f"Utilisation {period.title}",
                f"Share of the monitored minutes {period.since} in which the machine was running "
                "(above its run threshold).",
                Query(utilisation_pct(SITE)),
                p.PERCENT,
                time_from=period.time_from,
                max_value=100,
            )
        )
    board.with_panel(
        p.state_timeline(
            "Machine states",
            "Off, idle or running, a row per machine. A gap means the sensor was silent.",
            Query(states(SITE)),
        )
    )
    board.with_panel(
        p.time_series(
            "15-minute demand",
            "Mean power of each quarter hour, all machines together: the figure demand "
            "charges are billed on (with a grid site meter, its quarter hours are: see "
            "'Grid and own solar'). Spreading big jobs flattens the peaks.",
            Query(demand_kw(SITE)).alias("demand"),
            p.KW,
            w=16,
        )
    )
    board.with_panel(
        p.time_series(
            "Demand now and this month's peak",
            "The running 15-minute average of site power and the month's highest quarter hour "
            "so far, as the gateway computes them; when the running line nears the peak, a new "
            "peak (and a higher demand charge) is minutes away.",
            Query(live_demand_kw(SITE)),
            p.KW,
            w=8,
        )
    )
    board.with_panel(
        p.time_series(
            "Grid and own solar",
            "The site meters (shop.toml [[site_meter]]): the utility's meter at the grid "
            "connection, which also sees what no machine meters and then sets the demand "
            "peak, and the solar production the machines use first. Empty without them.",
            Query(site_power_kw(SITE)).alias("$tag_role"),
            p.KW,
            w=16,
        )
    )
    board.with_panel(
        p.per_machine_bars(
            "Energy cost by machine",
            "What each machine's energy cost in the selected time range.",
            Query(select({"cost": 'sum("cost")'}, ENERGY, [SITE], ["machine"])),
            p.currency_unit(currency),
        )
    )
    return board
