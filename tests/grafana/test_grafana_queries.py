"""Every dashboard query, filled in as Grafana does, answers from a real influxd.

The influxd holds a simulated shop day that the gateway itself replayed and wrote
(tests/grafana/shop_data.py). Queries go through the provisioned data source's settings
(URL, database, POST, Authorization header), "now" is the end of that day in the shop's
time zone, and panels with their own time range (today, this month, last 5 minutes)
get it. Beyond "returns rows", the owner's numbers must agree with the ledger's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from gateway.engine.drawdown import SCALE
from gateway.engine.localtime import local_date, period_of
from gateway.engine.states import RUNNING, machine_states
from gateway.ledger import Ledger
from gateway.ledger.membership import MemberLedger
from grafana.influxql import DATASOURCE_UID
from tests.grafana.grafana_support import (
    DATASOURCES,
    ProvisionedInflux,
    Text,
    boards,
    interval,
    provisioning,
    substitute,
    texts,
    time_range,
    values,
)
from tests.grafana.shop_data import ShopInflux, write_shop_day
from tests.servers import Influxd

DETAIL_MACHINE = "cnc-01"  # the machine the detail dashboard is looked at for
TEXTS = [t for board in boards().values() for t in texts(board)]


class Shop:
    """The written shop day and a Grafana-like way to run the dashboards' queries on it."""

    def __init__(self, data: ShopInflux, source: ProvisionedInflux) -> None:
        self.data = data
        self.source = source
        sites = self.variable_values("shopwatt-overview", "site", {})
        machines = self.variable_values("shopwatt-jobs", "machine", {"site": sites})
        self.values = {"site": sites, "machine": machines}

    def variable_values(self, board: str, name: str, known: dict[str, list[str]]) -> list[str]:
        """What Grafana offers for a template variable (its query run with `known`)."""
        (text,) = [t for t in TEXTS if t.board == board and t.where == f"variable {name}"]
        return [row["value"] for row in self.rows(text, known)]

    def variables(self, board: str) -> dict[str, list[str]]:
        """The values the dashboard is looked at with: one machine on the detail, else All."""
        if board == "shopwatt-machine":
            return self.values | {"machine": [DETAIL_MACHINE]}
        return self.values

    def rows(
        self, text: Text, variables: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """The query's rows (columns plus tags), as the panel would receive them."""
        return values(self.result(text, variables))

    def result(self, text: Text, variables: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """InfluxDB's answer to the query as Grafana would send it."""
        start, end = time_range(text.time_from, self.data.now_ms, self.data.tz)
        q = substitute(
            text.query,
            start,
            end,
            interval(start, end, text.min_interval_s),
            self.variables(text.board) if variables is None else variables,
        )
        return self.source.query(q)

    def panel(self, board: str, title: str) -> Text:
        """The (first) query of a panel, by dashboard uid and panel title."""
        return next(t for t in TEXTS if t.board == board and t.where.startswith(f"panel {title!r}"))


@pytest.fixture(scope="module")
def shop(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop day in its own database; queried through the provisioned data source."""
    database = influxd.create_database("grafana_shop_day")
    try:
        data = write_shop_day(tmp_path_factory.mktemp("shop"), influxd.url, database)
        env = {
            "SHOPWATT_INFLUX_URL": influxd.url,
            "SHOPWATT_INFLUX_DATABASE": database,
            "SHOPWATT_INFLUX_TOKEN": "none",  # 1.x without auth ignores the header
        }
        (config,) = provisioning(DATASOURCES, env)
        (source,) = [s for s in config["datasources"] if s["uid"] == DATASOURCE_UID]
        yield Shop(data, ProvisionedInflux(source))
    finally:
        influxd.drop_database(database)


def _has_values(rows: list[dict[str, Any]]) -> bool:
    return any(v is not None for row in rows for k, v in row.items() if k != "time")


@pytest.mark.parametrize("text", TEXTS, ids=[t.id for t in TEXTS])
def test_every_query_returns_data(shop: Shop, text: Text) -> None:
    rows = shop.rows(text)
    assert _has_values(rows), f"{text.id}: no data for\n{text.query}"


def _names(text: Text, result: dict[str, Any]) -> set[str]:
    """The field names a panel shows: columns or $col series, after its transformations."""
    assert text.panel is not None
    names: set[str] = set()
    for series in result.get("series", []):
        names |= set(series["columns"]) | set(series.get("tags", {}))
    if text.result_format != "table":
        names.discard("time")
    else:
        names = {"Time" if n == "time" else n for n in names}
    for step in text.panel.get("transformations", []):
        if step["id"] == "groupBy":
            fields = step["options"]["fields"]
            names = {n for n, f in fields.items() if f["operation"] == "groupby"}
            names |= {f"{n} (sum)" for n, f in fields.items() if f["operation"] == "aggregate"}
        elif step["id"] == "organize":
            renames = step["options"]["renameByName"]
            names = {renames.get(n, n) for n in names}
    return names


PANEL_TEXTS = [t for t in TEXTS if t.panel is not None]


@pytest.mark.parametrize("text", PANEL_TEXTS, ids=[t.id for t in PANEL_TEXTS])
def test_units_axes_sorting_and_totals_name_fields_the_query_returns(
    shop: Shop, text: Text
) -> None:
    assert text.panel is not None
    options = text.panel.get("options", {})
    wanted = {o["matcher"]["options"] for o in text.panel["fieldConfig"].get("overrides", [])}
    wanted |= {options["xField"]} if "xField" in options else set()
    wanted |= {s["displayName"] for s in options.get("sortBy", [])}
    wanted |= set(options.get("footer", {}).get("fields", []))
    if wanted and text.result_format != "table":
        # A series is named by its alias; $col names it after the query's column.
        assert text.panel["targets"][0].get("alias") == "$col", text.id
    assert wanted <= _names(text, shop.result(text)), text.id


def test_today_shows_the_kwh_and_cost_the_ledger_accounts_for_the_day(shop: Shop) -> None:
    (today,) = shop.rows(shop.panel("shopwatt-overview", "Today"))
    rows = shop.data.rows
    kwh = sum(r.amounts.energy_wh for r in rows) / 1000
    cost = sum(r.amounts.energy_cents for r in rows) / 100
    assert today["kWh"] == pytest.approx(kwh, rel=1e-9)
    assert today["cost"] == pytest.approx(cost, abs=0.005 * len(rows))  # ledger: cents per row


def test_utilisation_is_the_share_of_monitored_minutes_spent_running(shop: Shop) -> None:
    got = {
        r["machine"]: r["utilisation"]
        for r in shop.rows(shop.panel("shopwatt-overview", "Utilisation today"))
    }
    expected = {}
    for machine, r in shop.data.readings.items():
        states = machine_states(r.watts, shop.data.cfg.machines[machine])
        minute = r.t_ms // 60_000
        last_of_minute = np.flatnonzero(np.diff(minute, append=minute[-1] + 1))
        expected[machine] = float(np.mean(states[last_of_minute] == RUNNING) * 100)
    assert got == pytest.approx(expected)
    assert min(got.values()) > 0 and max(got.values()) < 100


def test_jobs_table_lists_every_finished_job_with_the_ledgers_total(shop: Shop) -> None:
    table = shop.rows(shop.panel("shopwatt-jobs", "Jobs"))
    got = {(r["machine"], r["job_id"]): r["total_cost"] for r in table}
    expected = {
        (r.machine, r.job_id): r.amounts.total_cents / 100
        for r in shop.data.rows
        if r.kind == "job" and not r.open
    }
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=0.015)


def test_the_months_peak_demand_is_the_highest_quarter_hour(shop: Shop) -> None:
    (peak,) = shop.rows(shop.panel("shopwatt-overview", "Peak 15-min demand this month"))
    demand = shop.rows(shop.panel("shopwatt-overview", "15-minute demand"))
    highest = max(r["kW"] for r in demand if r["kW"] is not None)
    assert peak["peak"] == pytest.approx(highest)
    assert not math.isclose(peak["peak"], min(r["kW"] for r in demand if r["kW"] is not None))


def test_the_live_peak_so_far_ends_at_the_bills_peak(shop: Shop) -> None:
    rows = shop.rows(shop.panel("shopwatt-overview", "Demand now and this month's peak"))
    peaks = [r["peak so far"] for r in rows if r["peak so far"] is not None]
    bill = Ledger(shop.data.cfg).bill(period_of(local_date(shop.data.now_ms, shop.data.tz)))
    assert peaks == sorted(peaks)  # the peak so far never falls within a month
    assert peaks[-1] == float(bill.peak_kw) > 0


def test_power_now_shows_every_reporting_machine(shop: Shop) -> None:
    rows = shop.rows(shop.panel("shopwatt-overview", "Power now"))
    assert {r["machine"] for r in rows} == set(shop.data.readings)


def test_members_panel_shows_each_members_balance_as_the_ledger_has_it(shop: Shop) -> None:
    table = shop.rows(shop.panel("shopwatt-jobs", "Members' prepaid hours"))
    got = {r["member"]: (r["Credits left"], r["Low balance"]) for r in table}
    today = local_date(shop.data.now_ms, shop.data.tz)
    expected = {
        b.member: (b.balance / SCALE, b.low) for b in MemberLedger(shop.data.cfg).balances(today)
    }
    assert got == expected and set(got) == {"fablab", "nowak"}


def test_grid_and_own_solar_show_each_site_meter_by_its_role(shop: Shop) -> None:
    rows = shop.rows(shop.panel("shopwatt-overview", "Grid and own solar"))
    assert {r["role"] for r in rows if r["kW"] is not None} == {"grid", "production"}
    solar = [r["kW"] for r in rows if r["role"] == "production" and r["kW"] is not None]
    assert solar == pytest.approx([2.0] * len(solar))
