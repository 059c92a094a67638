"""What every shopwatt dashboard has: uid, tags, links to the others, time, variables."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from grafana.influxql import datasource
from grafana.queries import SITE, tag_values

TAG = "shopwatt"


def site_variable() -> dash.QueryVariable:
    """$site: one gateway's site id (a central InfluxDB holds several shops)."""
    return (
        dash.QueryVariable("site")
        .label("Site")
        .datasource(datasource())
        .query(tag_values("site"))
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .allow_custom_value(False)
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )


def machine_variable(*, several: bool) -> dash.QueryVariable:
    """$machine: the site's machines; `several` allows a selection and "All"."""
    return (
        dash.QueryVariable("machine")
        .label("Machine")
        .datasource(datasource())
        .query(tag_values("machine", SITE))
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .allow_custom_value(False)
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(several)
        .include_all(several)
    )


def new_board(
    uid: str,
    title: str,
    description: str,
    time_from: str,
    variables: list[dash.QueryVariable],
) -> dash.Dashboard:
    """A dashboard with a stable uid, linked to the other shopwatt dashboards."""
    links = (
        dash.DashboardLink("shopwatt")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(False)
    )
    board = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time(time_from, "now")
        .refresh("1m")
        .timezone("browser")
        .editable()
        .link(links)
    )
    for variable in variables:
        board.with_variable(variable)
    return board
