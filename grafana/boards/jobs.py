"""Jobs and costs: every finished job with its costs, per customer, per machine, per band;
members' prepaid hours."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table

from gateway.outputs.schema import ENERGY, JOB, MEMBER, OVERHEAD
from grafana import panels as p
from grafana.board import machine_variable, new_board, site_variable
from grafana.influxql import Query
from grafana.queries import MACHINE, SITE, calls, raw, select

UID = "shopwatt-jobs"
JOB_COLUMNS = {
    "Time": "End",
    "job_id": "Job",
    "customer": "Customer",
    "machine": "Machine",
    "start_ms": "Start",
    "run_h": "Run hours",
    "energy_kwh": "kWh",
    "energy_cost": "Energy",
    "depreciation_cost": "Depreciation",
    "maintenance_cost": "Maintenance",
    "total_cost": "Total",
}
MONEY = ("energy_cost", "depreciation_cost", "maintenance_cost", "total_cost")
COST_PARTS = {
    "energy_cost": "energy",
    "depreciation_cost": "depreciation",
    "maintenance_cost": "maintenance",
}


def build(currency: str) -> dash.Dashboard:
    """The jobs and costs dashboard."""
    money = p.currency_unit(currency)
    board = new_board(
        UID,
        "Jobs and costs",
        "Finished jobs with energy, depreciation and maintenance cost; per customer, machine "
        "and tariff band. The monthly export from the ledger stays the accounting record.",
        p.THIS_MONTH,
        [site_variable(), machine_variable(several=True)],
    )
    fields = tuple(f for f in JOB_COLUMNS if f not in ("Time", "machine"))
    jobs = p.rows_table(
        "Jobs",
        "One row per finished job (a job appears when it ends), in the selected time range.",
        Query(raw(fields, JOB, [SITE, MACHINE])),
    )
    jobs.with_transformation(p.organize(JOB_COLUMNS))
    p.unit_override(jobs, "Start", p.WHEN)
    p.unit_override(jobs, "kWh", p.KWH)
    for field in MONEY:
        p.unit_override(jobs, JOB_COLUMNS[field], money)
    sums = ["run_h", "energy_kwh", *MONEY]
    board.with_panel(p.totals(p.newest_first(jobs), [JOB_COLUMNS[c] for c in sums]))

    per_customer = p.bar_chart(
        "Cost per customer",
        "What the selected range's jobs cost, per customer: energy, depreciation and maintenance.",
        Query(raw(("customer", *COST_PARTS), JOB, [SITE, MACHINE])),
        money,
        "customer",
        stacked=True,
        h=9,
    )
    per_customer.with_transformation(p.group_by("customer", tuple(COST_PARTS)))
    per_customer.with_transformation(
        p.organize({f"{f} (sum)": label for f, label in COST_PARTS.items()})
    )
    board.with_panel(per_customer)
    board.with_panel(
        p.bar_chart(
            "Job cost per machine",
            "What the selected range's jobs cost per machine: energy, depreciation, maintenance.",
            Query(select(calls("sum", COST_PARTS), JOB, [SITE, MACHINE], ["machine"])),
            money,
            "machine",
            stacked=True,
            h=9,
        )
    )
    for title, field, unit in [
        ("Energy by tariff band", "kwh", p.KWH),
        ("Energy cost by tariff band", "cost", money),
    ]:
        by_band = select({field: f'sum("{field}")'}, ENERGY, [SITE, MACHINE], ["band"])
        board.with_panel(
            p.pie(
                title,
                "All energy of the selected machines in the range, split by tariff band.",
                Query(by_band).alias("$tag_band"),
                unit,
            )
        )
    outside = p.bar_chart(
        "Energy outside jobs",
        "Per machine: energy used while no job ran (idle, warm-up, standby) and its cost.",
        Query(
            select(
                calls("sum", {"energy_kwh": "kWh", "energy_cost": "cost"}),
                OVERHEAD,
                [SITE, MACHINE],
                ["machine"],
            )
        ),
        p.KWH,
        "machine",
        w=8,
    )
    board.with_panel(p.unit_override(outside, "cost", money))
    board.with_panel(members_panel())
    return board


MEMBER_COLUMNS = {
    "balance_credits": "Credits left",
    "expiring_credits": "Expiring within 14 days",
    "low": "Low balance",
}


def members_panel() -> table.Panel:
    """Each member's prepaid credits as last written: balance, expiring soon, low or not."""
    last = select(calls("last", MEMBER_COLUMNS), MEMBER, [SITE], ["member"])
    panel = p.rows_table(
        "Members' prepaid hours",
        "Per member (docs/members.md): credits left, credits that expire within 14 days "
        "unless drawn first, and whether the balance is below the member's low mark.",
        Query(last),
        h=8,
    )
    return panel.with_transformation(p.organize({"member": "Member"}))
