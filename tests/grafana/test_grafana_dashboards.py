"""The committed dashboards: generated from code, valid, tidy, portable, one data source."""

from __future__ import annotations

import json
import re
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from grafana.generate import generated, stale
from grafana.influxql import DATASOURCE_UID
from tests.grafana.grafana_support import DASHBOARDS, boards, texts

UIDS = {"shopwatt-overview", "shopwatt-machine", "shopwatt-jobs", "shopwatt-health"}
# What a panel may compute (docs/influxdb.md): the gateway already did the rest.
FUNCTIONS = {"sum", "mean", "max", "last", "floor", "time"}


def _datasources(node: Any) -> list[Any]:
    """Every `datasource` value anywhere in a JSON tree."""
    if isinstance(node, dict):
        own = [node["datasource"]] if "datasource" in node else []
        return own + [d for v in node.values() for d in _datasources(v)]
    if isinstance(node, list):
        return [d for v in node for d in _datasources(v)]
    return []


def test_regenerating_gives_the_committed_files_byte_for_byte() -> None:
    files = generated()
    assert stale(files) == [], "run `python -m grafana` and commit the result"
    assert generated() == files  # nothing in the output depends on when it ran
    assert {p.name for p in DASHBOARDS.glob("*.json")} == {f"{uid}.json" for uid in UIDS}


def test_dashboards_are_valid_json_with_stable_uids_and_numbered_panels() -> None:
    for path in DASHBOARDS.glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == f"{board['uid']}.json"
        ids = [p["id"] for p in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))
    assert set(boards()) == UIDS


def test_dashboards_read_back_into_grafanas_11_6_dashboard_model() -> None:
    register_default_plugins()  # panel options and field config decode by panel type
    for uid, board in boards().items():
        back = json.loads(JSONEncoder().encode(Dashboard.from_json(board)))
        kept = ("id", "type", "title", "gridPos", "targets", "options", "timeFrom")
        for ours, theirs in zip(board["panels"], back["panels"], strict=True):
            assert {k: ours.get(k) for k in kept} == {k: theirs.get(k) for k in kept}, uid
        assert back["templating"] == board["templating"], uid


def test_every_panel_variable_and_annotation_reads_the_provisioned_influxdb() -> None:
    for board in boards().values():
        refs = _datasources(board)
        queried = list(texts(board))
        assert len(refs) >= len(queried) > 0
        assert all(r == {"type": "influxdb", "uid": DATASOURCE_UID} for r in refs), board["uid"]
        for panel in board["panels"]:
            assert panel["targets"], f"{board['uid']}: panel {panel['title']!r} has no query"


def test_queries_are_portable_influxql_that_only_sums_averages_maxes_and_lasts() -> None:
    for board in boards().values():
        for text in texts(board):
            q = text.query
            assert q.startswith(("SELECT ", "SHOW TAG VALUES ")), text.id
            assert not re.search(r"integral|from\(bucket|\|>|show databases", q, re.I), text.id
            used = {f.lower() for f in re.findall(r"(\w+)\(", q)}
            assert used <= FUNCTIONS, f"{text.id}: {sorted(used - FUNCTIONS)}"


def test_panels_tile_the_24_column_grid_without_overlapping() -> None:
    for board in boards().values():
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & taken, f"{board['uid']}: {panel['title']!r} overlaps"
            taken |= cells


def test_machine_detail_shows_only_the_chosen_machine() -> None:
    board = boards()["shopwatt-machine"]
    machine = next(v for v in board["templating"]["list"] if v["name"] == "machine")
    assert not machine.get("multi") and not machine.get("includeAll")
    for text in texts(board):
        if not text.where.startswith("variable"):
            assert '"machine" =~ /^$machine$/' in text.query, text.id


def test_money_is_shown_in_the_sites_currency() -> None:
    def text_of(currency: str) -> str:
        return "".join(t for p, t in sorted(generated(currency).items()) if p.suffix == ".json")

    eur = text_of("EUR")
    assert eur.count('"currencyEUR"') > 10
    assert text_of("CHF") == eur.replace('"currencyEUR"', '"currencyCHF"')
    assert text_of("PLN") == eur.replace('"currencyEUR"', '"suffix: PLN"')


def test_the_owners_guide_explains_every_panel_and_shows_every_layout() -> None:
    guide = (DASHBOARDS.parents[1] / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for board in boards().values():
        assert f"(../grafana/layouts/{board['uid']}.svg)" in guide, board["uid"]
        for panel in board["panels"]:
            assert f"\n| {panel['title']} |" in guide, f"{board['uid']}: {panel['title']!r}"
