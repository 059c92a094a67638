"""Machine profiles: the shipped ones load, and a bad profile file names file, key and value."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.profile import PROFILE_DIR, builtin_profile, builtin_profile_names, load_profile
from gateway.errors import ConfigError

MILL = (PROFILE_DIR / "cnc-mill.toml").read_text()


def test_the_five_kinds_of_machine_are_shipped_and_consistent() -> None:
    assert builtin_profile_names() == [
        "air-compressor",
        "cnc-lathe",
        "cnc-mill",
        "fdm-printer",
        "laser-cutter",
    ]
    for name in builtin_profile_names():
        p = builtin_profile(name)
        assert p.power.idle_w < p.machine.run_above_w < p.power.run_w[0], name
        assert p.peak_w <= p.machine.rated_w, name
        assert 0 < p.electrical.run.power_factor <= 1, name


def test_realistic_small_shop_levels() -> None:
    mill, printer = builtin_profile("cnc-mill"), builtin_profile("fdm-printer")
    assert 1000 <= mill.power.idle_w <= 2000 and mill.power.run_w[0] >= 3000
    assert mill.power.run_w[1] <= 10000 and mill.inrush is not None
    assert 20 <= printer.power.idle_w <= 50 and printer.heater is not None
    assert builtin_profile("air-compressor").schedule.whole_shift


def test_unknown_builtin_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no machine profile 'plasma'.*cnc-mill"):
        builtin_profile("plasma")


def _edit(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_edit("idle_w = 1500", "idle_w = -5"), r"power\.idle_w = -5: Input should be greater"),
        (
            _edit("run_w = [3500, 9000]", "run_w = [9000, 3500]"),
            r"power\.run_w: \[9000\.0, 3500\.0\]: expected \[low, high\]",
        ),
        (_edit("tau_s = 1.0", "tau_ms = 1.0"), r"inrush\.tau_ms: unknown key"),
        (_edit("[cycle]", "[cycles]"), r"cycles: unknown key"),
        (
            _edit("run_above_w = 2500", "run_above_w = 1000"),
            r"power\.idle_w = 1500\.0: .*reaches 1680 W, not below machine\.run_above_w \(1000",
        ),
        (
            _edit("idle_w = 1500", "idle_w = 2450"),
            r"power\.idle_w = 2450\.0: .*not below machine\.run_above_w \(2500\.0\)",
        ),
        (
            _edit("run_w = [3500, 9000]", "run_w = [2600, 9000]"),
            r"power\.run_w = \[2600\.0, 9000\.0\]: .*drops to 2132 W",
        ),
        (
            _edit("rated_w = 20000", "rated_w = 12000"),
            r"machine\.rated_w = 12000\.0: below the profile's peak 15930 W",
        ),
        (
            _edit("pause_s = [8, 120]", "pause_s = [8, 400]"),
            r"cycle\.pause_s = \[8\.0, 400\.0\]: .*merge_gap_s \(300\.0\)",
        ),
        (
            _edit("between_s = [600, 2700]", "between_s = [200, 2700]"),
            r"schedule\.between_s = \[200\.0, 2700\.0\]: .*two jobs merge",
        ),
        (
            _edit("power_factor = 0.92", "power_factor = 1.3"),
            r"electrical\.run\.power_factor = 1\.3: .*less than or equal to 1",
        ),
        (
            _edit("5 = 0.30", "1 = 0.30"),
            r"electrical\.run\.harmonics\.1\.\[key\] = '1': .*greater than or equal to 2",
        ),
        (_edit("[power]", "[power"), r"not valid TOML"),
    ],
)
def test_bad_profile_names_file_key_and_value(
    tmp_path: Path, edit: Callable[[str], str], expected: str
) -> None:
    path = tmp_path / "my-mill.toml"
    path.write_text(edit(MILL))
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(err.value).startswith(str(path)), err.value
    assert any(re.search(expected, line) for line in str(err.value).splitlines()), err.value
