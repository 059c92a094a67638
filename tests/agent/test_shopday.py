"""The simulated shop day: a valid shop.toml, files the gateway reads, and honest truth."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np

from agent.shopday import ShopDay, simulate_shop_day
from gateway.config import parse_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "shop.toml"


def test_config_toml_is_a_valid_shop_toml_with_every_machine(shop_day: ShopDay) -> None:
    cfg = parse_config(tomllib.loads(shop_day.config_toml), Path("shop.toml"))
    assert list(cfg.machines) == list(shop_day.truth)
    assert cfg.site.timezone == "Europe/Berlin"
    with EXAMPLE.open("rb") as fh:
        example = tomllib.load(fh)
    # The example's tariff, plus the day-ahead series the demo imports (docs/tariffs.md).
    assert cfg.tariff.spot is not None and cfg.tariff.spot.series == "day-ahead"
    example_tariff = parse_config(example, EXAMPLE).tariff.model_dump(exclude={"spot"})
    assert cfg.tariff.model_dump(exclude={"spot"}) == example_tariff


def test_same_seed_same_day_other_seed_other_day() -> None:
    a, b, c = simulate_shop_day(7), simulate_shop_day(7), simulate_shop_day(8)
    for m in a.power:
        np.testing.assert_array_equal(a.power[m].watts, b.power[m].watts)
        np.testing.assert_array_equal(a.sensors[m].wh, b.sensors[m].wh)
    assert a.truth == b.truth
    assert a.config_toml == b.config_toml
    assert not np.array_equal(a.power["cnc-01"].watts, c.power["cnc-01"].watts)
    assert a.truth["cnc-01"].jobs != c.truth["cnc-01"].jobs


def test_readings_csv_has_every_delivered_reading(shop_day: ShopDay, tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    rows = shop_day.readings_csv(path)
    delivered = sum(int(s.present.sum()) for s in shop_day.sensors.values())
    assert rows == delivered
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["time", "machine", "watts", "wh"]
        first = next(reader)
        body = list(reader)
    assert len(body) + 1 == rows
    assert first[0].endswith("Z")
    # Power-only sensors leave the counter field empty; counter sensors always fill it.
    by_machine = {r[1]: r[3] for r in body}
    for m, truth in shop_day.truth.items():
        assert (by_machine[m] != "") == truth.counter, m


def test_jobs_csv_lists_only_the_explicit_machines(shop_day: ShopDay, tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    rows = shop_day.jobs_csv(path)
    with path.open(newline="") as fh:
        jobs = list(csv.DictReader(fh))
    explicit = {m for m, t in shop_day.truth.items() if t.explicit}
    assert rows == len(jobs) == sum(len(shop_day.truth[m].jobs) for m in explicit)
    assert {j["machine"] for j in jobs} == explicit
    assert all(j["customer"] for j in jobs)
