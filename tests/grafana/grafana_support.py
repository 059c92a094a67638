"""What Grafana does with a dashboard's queries, done here so real influxd can answer them.

- every InfluxQL text of a dashboard (panel targets, template variables, annotations);
- the time range a panel asks for (the dashboard's picker or the panel's own override),
  relative to a chosen "now" in the shop's time zone (the browser's, on the shop's PC);
- `$timeFilter`, `$__interval` and `$site`/`$machine` filled in as Grafana's InfluxDB
  data source does (absolute ms bounds; regex-escaped values, `(a|b)` for several);
- the provisioned data source (grafana/provisioning/datasources) as the HTTP client:
  its URL, database, method and Authorization header, with `${VAR}` from an environment.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
PROVIDERS = GRAFANA / "provisioning" / "dashboards"
MIN_INTERVAL_S = 10  # the data source's timeInterval (checked against the YAML in a test)
MAX_DATA_POINTS = 1000  # about a panel's width in pixels: Grafana's default
# Grafana rounds $__interval to one of these (seconds).
NICE_INTERVALS_S = (10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400)

Board = dict[str, Any]


def boards() -> dict[str, Board]:
    """Every committed dashboard by uid."""
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        out[board["uid"]] = board
    return out


@dataclass(frozen=True)
class Text:
    """One InfluxQL text of a dashboard and the context Grafana runs it in."""

    board: str  # uid
    where: str  # "panel 'Power now' A", "variable machine", "annotation Jobs"
    query: str
    time_from: str  # the range's start: the panel's override or the dashboard's picker
    min_interval_s: int
    result_format: str
    panel: dict[str, Any] | None  # the panel, for panel targets

    @property
    def id(self) -> str:
        """A pytest id."""
        return f"{self.board}: {self.where}"


def _seconds(interval: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", interval)
    if match is None:
        raise ValueError(f"interval {interval!r} is not <n>s|m|h|d")
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def texts(board: Board) -> Iterator[Text]:
    """Every query of a dashboard: panel targets, then variables, then annotations."""
    picker = board["time"]["from"]
    for panel in board.get("panels", []):
        minimum = max(MIN_INTERVAL_S, _seconds(panel.get("interval", "10s")))
        for target in panel.get("targets", []):
            yield Text(
                board["uid"],
                f"panel {panel['title']!r} {target['refId']}",
                target["query"],
                panel.get("timeFrom", picker),
                minimum,
                target.get("resultFormat", "time_series"),
                panel,
            )
    for variable in board.get("templating", {}).get("list", []):
        yield Text(
            board["uid"], f"variable {variable['name']}", variable["query"], picker, 10, "", None
        )
    for annotation in board.get("annotations", {}).get("list", []):
        yield Text(
            board["uid"],
            f"annotation {annotation['name']}",
            annotation["target"]["query"],
            picker,
            10,
            "",
            None,
        )


def time_range(expr: str, now_ms: int, tz: ZoneInfo) -> tuple[int, int]:
    """[start, now] in UTC ms for a Grafana relative time: now/d, now/M, now-24h, 5m, 7d."""
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    if expr == "now/d":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elif expr == "now/M":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        match = re.fullmatch(r"(?:now-)?(\d+)([mhd])", expr)
        if match is None:
            raise ValueError(f"relative time {expr!r}: teach time_range() what Grafana does")
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
        start = now - timedelta(**{unit: int(match[1])})
    return int(start.timestamp() * 1000), now_ms


def interval(start_ms: int, end_ms: int, min_interval_s: int) -> str:
    """$__interval: the range over the max data points, at least the minimum, rounded up."""
    raw = max((end_ms - start_ms) / 1000 / MAX_DATA_POINTS, min_interval_s)
    return f"{next((s for s in NICE_INTERVALS_S if s >= raw), NICE_INTERVALS_S[-1])}s"


def regex_value(values: list[str]) -> str:
    """A variable's value inside /^...$/: escaped, and (a|b) for several (multi or All)."""
    escaped = [re.sub(r"([\\/^$.|?*+()\[\]{}])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(
    query: str, start_ms: int, end_ms: int, interval_text: str, variables: Mapping[str, list[str]]
) -> str:
    """The query as Grafana sends it to InfluxDB."""
    out = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    out = out.replace("$__interval", interval_text)
    for name, values in variables.items():
        out = out.replace(f"${name}", regex_value(values))
    left = re.findall(r"\$\w+", out)
    if left:
        raise ValueError(f"no value for {left} in {query!r}")
    return out


def _expand(node: Any, env: Mapping[str, str]) -> Any:
    """Grafana's ${VAR} interpolation of provisioning files; a variable not given fails."""
    if isinstance(node, dict):
        return {k: _expand(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env) for v in node]
    if isinstance(node, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], node)
    return node


def provisioning(folder: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The YAML files of one provisioning folder, ${VAR} expanded from env."""
    return [
        _expand(yaml.safe_load(path.read_text(encoding="utf-8")), env)
        for path in sorted(folder.glob("*.yaml"))
    ]


class ProvisionedInflux:
    """Queries InfluxDB the way Grafana does with the provisioned data source."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        data, secure = source["jsonData"], source.get("secureJsonData", {})
        self.url = source["url"].rstrip("/") + "/query"
        self.database = data["dbName"]
        self.method = data.get("httpMode", "GET")
        self.headers = {
            data[key]: secure[key.replace("Name", "Value")]
            for key in data
            if key.startswith("httpHeaderName")
        }

    def query(self, q: str) -> dict[str, Any]:
        """The first statement's result (InfluxDB's JSON); an error in it raises."""
        params = urllib.parse.urlencode({"q": q, "db": self.database, "epoch": "ms"})
        if self.method == "POST":
            request = urllib.request.Request(self.url, params.encode(), self.headers)
        else:
            request = urllib.request.Request(f"{self.url}?{params}", headers=self.headers)
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = json.load(resp)
        result: dict[str, Any] = body["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxDB refused {q!r}: {result['error']}")
        return result


def values(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a result: column -> value, plus the series' tags."""
    rows = []
    for series in result.get("series", []):
        tags = series.get("tags", {})
        rows += [tags | dict(zip(series["columns"], v, strict=True)) for v in series["values"]]
    return rows
