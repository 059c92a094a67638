"""Machine detail ($machine): power with its jobs, states, utilisation, recent jobs."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from gateway.outputs.schema import JOB
from grafana import panels as p
from grafana.board import machine_variable, new_board, site_variable
from grafana.influxql import Annotation, Query, datasource
from grafana.queries import (
    MACHINE,
    SITE,
    job_events,
    power_now_kw,
    power_w,
    raw,
    states,
    utilisation_pct,
)

UID = "shopwatt-machine"
RECENT_JOBS = ("job_id", "customer", "start_ms", "duration_h", "run_h", "energy_kwh", "total_cost")


def build(currency: str) -> dash.Dashboard:
    """The machine detail dashboard."""
    board = new_board(
        UID,
        "Machine detail",
        "One machine: its power with the jobs on it, its states, how busy it is, its jobs.",
        p.TODAY,
        [site_variable(), machine_variable(several=False)],
    )
    board.annotation(
        dash.AnnotationQuery()
        .name("Jobs")
        .datasource(datasource())
        .enable(True)
        .icon_color("purple")
        .target(Annotation(job_events(SITE, MACHINE), text_column="job_id", tags_column="customer"))
    )
    board.with_panel(
        p.time_series(
            "Power",
            "Power per sensor of $machine. A marker at the bottom is a job's end "
            "(hover: job id and customer).",
            Query(power_w(SITE, MACHINE)).alias("$tag_machine $tag_sensor"),
            p.W,
            h=9,
        )
    )
    board.with_panel(
        p.state_timeline(
            "State",
            "Off, idle or running. A gap means the sensor was silent.",
            Query(states(SITE, MACHINE)),
            h=4,
        )
    )
    board.with_panel(
        p.big_number(
            "Power now",
            "From the latest readings of the last 5 minutes.",
            Query(power_now_kw(SITE, MACHINE)),
            p.KW,
            time_from=p.LAST_5_MIN,
            h=5,
        )
    )
    for period in p.PERIODS:
        board.with_panel(
            p.big_number(
                f"Utilisation {period.title}",
                f"Share of the monitored minutes {period.since} in which $machine was running.",
                Query(utilisation_pct(SITE, MACHINE)),
                p.PERCENT,
                time_from=period.time_from,
                h=5,
            )
        )
    for period in p.PERIODS:
        board.with_panel(p.energy_and_cost(period, currency, SITE, MACHINE))
    jobs = p.rows_table(
        "Recent jobs",
        "Jobs of the last 7 days that have ended; a running job appears when it ends.",
        Query(raw(RECENT_JOBS, JOB, [SITE, MACHINE])),
        w=16,
        time_from=p.LAST_7_DAYS,
    )
    jobs.with_transformation(
        p.organize(
            {
                "Time": "End",
                "job_id": "Job",
                "customer": "Customer",
                "start_ms": "Start",
                "duration_h": "Hours",
                "run_h": "Run hours",
                "energy_kwh": "kWh",
                "total_cost": "Total cost",
            },
            hide=("machine",),
        )
    )
    for column, unit in [
        ("Start", p.WHEN),
        ("kWh", p.KWH),
        ("Total cost", p.currency_unit(currency)),
    ]:
        p.unit_override(jobs, column, unit)
    board.with_panel(p.newest_first(jobs))
    board.with_panel(
        p.bar_chart(
            "Energy per job",
            "kWh of each job of the last 7 days.",
            Query(raw(("job_id", "energy_kwh"), JOB, [SITE, MACHINE])),
            p.KWH,
            "job_id",
            w=8,
            h=10,
            time_from=p.LAST_7_DAYS,
        )
    )
    return board
