"""Every folder under tests/cases/ is a hand-computed case: the engine must reproduce it."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pytest
from engine_cases import CASES, load_case, mismatches, row_as_dict, run_case

FOLDERS = sorted(p for p in CASES.iterdir() if (p / "expected.json").exists())


def test_there_are_golden_cases() -> None:
    assert len(FOLDERS) >= 10


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_golden_case(folder: Path) -> None:
    case = load_case(folder)
    rows, stats = run_case(case)

    got = [row_as_dict(r, case) for r in rows]
    want = case.expected["rows"]
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}:\n{got}"
    problems = []
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        problems += mismatches(g, w, f"rows[{k}]")
    for machine, w in case.expected["stats"].items():
        problems += mismatches(asdict(stats[machine]), w, f"stats.{machine}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_rows_reconcile_with_metered_energy(folder: Path) -> None:
    rows, stats = run_case(load_case(folder))
    for machine, st in stats.items():
        total = math.fsum(r.energy_wh for r in rows if r.machine == machine)
        assert total == pytest.approx(st.metered_wh, abs=1e-6)
