"""Shop plans: the demo shop loads, and a bad plan names file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.shopplan import DEMO_PLAN, load_plan
from gateway.errors import ConfigError

DEMO = DEMO_PLAN.read_text()


def test_the_demo_shop_has_explicit_and_detected_counter_and_power_only_machines() -> None:
    plan = load_plan()
    assert 6 <= len(plan.machine) <= 8
    assert {m.jobs for m in plan.machine} == {"explicit", "detected"}
    assert {m.counter for m in plan.machine} == {True, False}
    assert {m.profile for m in plan.machine} >= {
        "cnc-mill",
        "cnc-lathe",
        "laser-cutter",
        "fdm-printer",
        "air-compressor",
    }
    assert plan.site.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'profile = "cnc-lathe"',
            'profile = "lathe"',
            r"machine\[2\] \(id=lathe-01\)\.profile = 'lathe': no such profile \(known: air-",
        ),
        (
            'shift = ["06:00", "15:00"]',
            'shift = ["15:00", "06:00"]',
            r"machine\[2\] \(id=lathe-01\)\.shift: \['15:00', '06:00'\]: must start after 00:00",
        ),
        (
            'outages = [["11:20", "11:27"]]',
            'outages = [["11:20", "24:00"]]',
            r"machine\[1\] \(id=cnc-02\)\.outages\[0\]: \['11:20', '24:00'\]: .*before 24:00",
        ),
        (
            'id = "cnc-02"',
            'id = "cnc-02"\nreboots = ["12:00"]',
            r"machine\[1\] \(id=cnc-02\): reboots \('12:00',\) reset a counter, but counter",
        ),
        ('jobs = "explicit"', 'jobs = "booked"', r"\.jobs = 'booked': Input should be"),
        ('id = "air-01"', 'id = "cnc-01"', r"machine: machine ids must be unique.*cnc-01"),
    ],
)
def test_bad_plan_names_file_key_and_value(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in DEMO
    path = tmp_path / "shop-plan.toml"
    path.write_text(DEMO.replace(old, new, 1))
    with pytest.raises(ConfigError, match=expected) as err:
        load_plan(path)
    assert str(err.value).startswith(str(path))
