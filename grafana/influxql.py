"""InfluxQL targets for the foundation SDK, which ships no InfluxDB query type of its own.

Every query is raw InfluxQL (`rawQuery`), the form Grafana's InfluxDB data source runs
unchanged on InfluxDB 1.x, 2.x (DBRP mapping) and 3.x. Every target, variable and
annotation names the provisioned data source by its fixed uid
(grafana/provisioning/datasources/shopwatt.yaml), so a dashboard never depends on
whatever the Grafana instance calls its default data source.
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE_UID = "shopwatt-influxdb"
DATASOURCE_TYPE = "influxdb"

ResultFormat = Literal["time_series", "table"]


def datasource() -> model.DataSourceRef:
    """The provisioned InfluxDB data source (a fresh object: the SDK's models are mutable)."""
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target as Grafana's InfluxDB data source stores it."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.ref_id = "A"
        self.result_format: ResultFormat = "time_series"
        self.alias = ""

    def to_json(self) -> dict[str, object]:
        """The target's JSON (keys as Grafana writes them)."""
        payload: dict[str, object] = {
            "datasource": datasource(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an InfluxQLQuery: `Query("SELECT ...").format("table").alias("$tag_machine")`."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query)

    def build(self) -> InfluxQLQuery:
        """The target."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """The target's letter within its panel (A, B, ...)."""
        self._internal.ref_id = ref_id
        return self

    def format(self, result_format: ResultFormat) -> Self:
        """`table` for one row per point or group (tables, bar charts, bar gauges)."""
        self._internal.result_format = result_format
        return self

    def alias(self, alias: str) -> Self:
        """Series name, e.g. `$tag_machine` (Grafana replaces it with the tag's value)."""
        self._internal.alias = alias
        return self


class AnnotationTarget(model.AnnotationTarget):
    """An InfluxQL annotation query: each row is an event at its time.

    The SDK's AnnotationTarget only knows Grafana's built-in annotation store; Grafana's
    InfluxDB data source reads the query and the column mapping from the same object.
    """

    def __init__(self, query: str, text_column: str, tags_column: str) -> None:
        super().__init__(limit=100, type_val="dashboard")
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        """The annotation target's JSON."""
        return super().to_json() | {
            "fromAnnotations": True,
            "query": self.query,
            "rawQuery": True,
            "refId": "Anno",
            "tagsColumn": self.tags_column,
            "textColumn": self.text_column,
        }


class Annotation(cogbuilder.Builder[model.AnnotationTarget]):
    """Builder of an AnnotationTarget, for the SDK's AnnotationQuery.target()."""

    def __init__(self, query: str, text_column: str, tags_column: str) -> None:
        self._internal = AnnotationTarget(query, text_column, tags_column)

    def build(self) -> AnnotationTarget:
        """The annotation target."""
        return self._internal
