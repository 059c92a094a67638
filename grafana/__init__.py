"""Grafana for shopwatt: dashboards as code (InfluxQL only), their generated JSON, provisioning.

`python -m grafana` regenerates grafana/dashboards/*.json and the layout pictures in
grafana/layouts/ from the builders in grafana/boards/ (see docs/dashboards.md).
"""
