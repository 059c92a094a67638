"""Sensor and gateway health: who went silent, weak Wi-Fi, lost or refused data, Modbus errors."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat

from gateway.outputs.schema import GATEWAY, SENSOR, SOURCE
from grafana import panels as p
from grafana.board import new_board, site_variable
from grafana.influxql import Query
from grafana.queries import BUCKET, MODBUS, SITE, calls, select

UID = "shopwatt-health"

# Modbus device counters (gateway/inputs/modbus.py COUNTERS) and what an owner calls them.
MODBUS_ERRORS = {
    "transport_errors": "no answer",
    "exception_replies": "refused by meter",
    "invalid_values": "implausible values",
}
MODBUS_STATUS = {
    "last_ok_ms": "last good poll",
    "consecutive_failures": "failed polls in a row",
    "polls": "polls",
}


def _gateway_number(
    title: str, description: str, field: str, unit: str, *, bad_above_zero: bool
) -> stat.Panel:
    return p.big_number(
        title,
        description,
        Query(select({title: f'last("{field}")'}, GATEWAY, [SITE])),
        unit,
        thresholds=p.zero_is_good() if bad_above_zero else None,
    )


def build(currency: str) -> dash.Dashboard:
    """The sensor and gateway health dashboard (currency unused: no money here)."""
    board = new_board(
        UID,
        "Sensor and gateway health",
        "Is every sensor reporting, is anything rejected or lost on the way to InfluxDB, "
        "do the Modbus meters answer?",
        "now-24h",
        [site_variable()],
    )
    for title, description, field, unit, bad in [
        (
            "Readings rejected",
            "Since the gateway started: readings that failed validation (the log says why).",
            "readings_rejected",
            p.COUNT,
            True,
        ),
        (
            "Readings deduplicated",
            "Since the gateway started: repeats of readings already counted "
            "(normal after a sensor reconnects).",
            "readings_deduplicated",
            p.COUNT,
            False,
        ),
        (
            "Outbox: lines waiting",
            "Points on the Pi's disk not yet in InfluxDB. Grows while InfluxDB is unreachable.",
            "outbox_depth",
            p.COUNT,
            False,
        ),
        (
            "Outbox: oldest line",
            "How long the oldest waiting point has waited.",
            "outbox_age_s",
            p.SECONDS,
            False,
        ),
        (
            "Lines dropped",
            "Points dropped because the outbox was full (oldest first). Should stay 0.",
            "outbox_dropped",
            p.COUNT,
            True,
        ),
        (
            "Lines refused",
            "Points InfluxDB refused as bad data (kept in the outbox's dead-letter table).",
            "outbox_dead_lettered",
            p.COUNT,
            True,
        ),
    ]:
        board.with_panel(_gateway_number(title, description, field, unit, bad_above_zero=bad))

    sensors = p.rows_table(
        "Sensors",
        "Per sensor: online or offline (its last will), when the gateway last heard from "
        "it, and its Wi-Fi signal.",
        Query(
            select(
                calls("last", {"online": "online", "last_seen_ms": "last seen", "rssi": "RSSI"}),
                SENSOR,
                [SITE],
                ["machine", "sensor"],
            )
        ),
        w=12,
        h=8,
    )
    sensors.with_transformation(
        p.organize(
            {
                "machine": "Machine",
                "sensor": "Sensor",
                "online": "Online",
                "last seen": "Last seen",
                "RSSI": "RSSI",
            },
            hide=("Time",),
        )
    )
    p.unit_override(sensors, "Last seen", p.SINCE)
    p.online_mapping(sensors, "Online")
    board.with_panel(p.unit_override(sensors, "RSSI", p.DBM))
    board.with_panel(
        p.time_series(
            "Wi-Fi signal",
            "RSSI per sensor. Above -67 dBm is good; below -80 dBm readings get lost and delayed.",
            Query(select({"RSSI": 'mean("rssi")'}, SENSOR, [SITE], [BUCKET, "sensor"])).alias(
                "$tag_sensor"
            ),
            p.DBM,
            w=12,
        )
    )
    board.with_panel(
        p.time_series(
            "Rejected and deduplicated readings",
            "Counters since the gateway started (a drop to 0 is a restart).",
            Query(
                select(
                    calls(
                        "max",
                        {"readings_rejected": "rejected", "readings_deduplicated": "deduplicated"},
                    ),
                    GATEWAY,
                    [SITE],
                    [BUCKET],
                )
            ),
            p.COUNT,
            w=12,
        )
    )
    outbox = p.time_series(
        "Outbox",
        "Points waiting for InfluxDB, and the age of the oldest (right axis).",
        Query(
            select(
                calls("max", {"outbox_depth": "lines waiting", "outbox_age_s": "oldest"}),
                GATEWAY,
                [SITE],
                [BUCKET],
            )
        ),
        p.COUNT,
        w=12,
    )
    board.with_panel(p.unit_override(outbox, "oldest", p.SECONDS, right_axis=True))
    board.with_panel(
        p.time_series(
            "Modbus errors",
            "Per meter, counters since the gateway started: polls without an answer, "
            "exception replies, values rejected as implausible.",
            Query(
                select(calls("max", MODBUS_ERRORS), SOURCE, [SITE, MODBUS], [BUCKET, "source"])
            ).alias("$tag_source $col"),
            p.COUNT,
            w=12,
        )
    )
    meters = p.rows_table(
        "Modbus meters",
        "Per meter: the last poll that got a value, and failed polls since then.",
        Query(select(calls("last", MODBUS_STATUS), SOURCE, [SITE, MODBUS], ["source"])),
        w=12,
        h=8,
    )
    meters.with_transformation(
        p.organize({"source": "Meter", **{v: v for v in MODBUS_STATUS.values()}}, hide=("Time",))
    )
    board.with_panel(p.unit_override(meters, "last good poll", p.SINCE))
    return board
