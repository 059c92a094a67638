"""Provisioning: one InfluxQL data source with the uid the panels use; a file provider."""

from __future__ import annotations

import re

import pytest

from grafana.influxql import DATASOURCE_UID
from tests.grafana.grafana_support import (
    DASHBOARDS,
    DATASOURCES,
    MIN_INTERVAL_S,
    PROVIDERS,
    provisioning,
)

ENV = {
    "SHOPWATT_INFLUX_URL": "http://127.0.0.1:8086",
    "SHOPWATT_INFLUX_DATABASE": "shopwatt",
    "SHOPWATT_INFLUX_TOKEN": "t0ken",
    "SHOPWATT_GRAFANA_DASHBOARDS": str(DASHBOARDS),
}


def test_the_data_source_is_influxql_with_the_panels_uid_and_settings_from_the_environment() -> (
    None
):
    (config,) = provisioning(DATASOURCES, ENV)
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"  # never Flux: it does not reach 3.x
    assert source["url"] == "http://127.0.0.1:8086"
    assert source["jsonData"]["dbName"] == "shopwatt"
    assert source["jsonData"]["timeInterval"] == f"{MIN_INTERVAL_S}s"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token t0ken"
    assert "password" not in str(config)  # the secret comes from the environment only


def test_every_variable_the_files_use_is_documented_and_a_missing_one_fails() -> None:
    used = set()
    for folder in (DATASOURCES, PROVIDERS):
        for path in folder.glob("*.yaml"):
            used |= set(re.findall(r"\$\{(\w+)\}", path.read_text(encoding="utf-8")))
    assert used == set(ENV)
    with pytest.raises(KeyError, match="SHOPWATT_INFLUX_TOKEN"):
        provisioning(DATASOURCES, {k: v for k, v in ENV.items() if k != "SHOPWATT_INFLUX_TOKEN"})


def test_the_file_provider_loads_the_generated_dashboards_read_only() -> None:
    (config,) = provisioning(PROVIDERS, ENV)
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False  # edits would be lost at the next generation
    assert provider["options"]["path"] == str(DASHBOARDS)
    assert len(list(DASHBOARDS.glob("*.json"))) == 4
