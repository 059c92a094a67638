"""Random shops, minute by minute: the engine agrees with the slow oracle, and reconciles."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from engine_reference import detect, split
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import DAYS, Machine, MachineCost, Tariff
from gateway.engine import ExplicitJob, MachineReadings, compute_machine
from gateway.engine.energy import interval_energy

BERLIN = ZoneInfo("Europe/Berlin")
# Local midnights a day before each DST change, and in a plain week
STARTS = ["2026-03-28T00:00:00+01:00", "2026-10-24T00:00:00+02:00", "2026-11-02T00:00:00+01:00"]
# Whole hours, but no band edge inside the hour that DST skips or repeats: there the
# engine's rule (first instant showing that time) and a wall-clock lookup legitimately
# differ; the dst_* golden cases pin that rule instead.
HOURS = [f"{h:02d}:00" for h in range(25) if h not in (2, 3)]

bands = st.lists(
    st.fixed_dictionaries(
        {
            "rate": st.sampled_from([0.1, 0.2, 0.5]),
            "days": st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
            "start": st.sampled_from(HOURS[:-1]),
            "end": st.sampled_from(HOURS[1:]),
        }
        # shop.toml refuses a band that starts when it ends (00:00-24:00 included)
    ).filter(lambda b: str(b["start"]) != str(b["end"]).replace("24:00", "00:00")),
    max_size=3,
)


def _n_of(draw: st.DrawFn, n: int, values: list[float]) -> list[float]:
    return draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))


def _counter(draw: st.DrawFn, n: int) -> npt.NDArray[np.float64]:
    """No counter, or one with steady steps, resets (to 0), jumps and missing values."""
    if not draw(st.booleans()):
        return np.full(n, np.nan)
    steps = np.array(_n_of(draw, n, [0.0, 5.0, 40.0, -1.0, 1e6]))
    wh = np.where(steps < 0, 0.0, np.cumsum(np.abs(steps)))
    wh[np.array(_n_of(draw, n, [False, False, False, True]), dtype=bool)] = np.nan
    return wh


@st.composite
def shops(draw: st.DrawFn) -> tuple[MachineReadings, Machine, Tariff, list[ExplicitJob] | None]:
    """Readings on a whole-minute grid around DST days, a machine, a tariff, maybe jobs."""
    n = draw(st.integers(2, 40))
    t0 = int(datetime.fromisoformat(draw(st.sampled_from(STARTS))).timestamp() * 1000)
    t0 += draw(st.integers(0, 48 * 60)) * 60_000
    minutes = np.concatenate([[0], np.cumsum(_n_of(draw, n - 1, list(range(1, 181))))])
    t = t0 + 60_000 * minutes.astype(np.int64)
    watts = np.array(_n_of(draw, n, [0, 30, 500, 1500, 4000]), dtype=np.float64)
    machine = Machine(
        id="m",
        off_below_w=50,
        run_above_w=1000,
        min_job_s=draw(st.sampled_from([0, 60, 600])),
        merge_gap_s=draw(st.sampled_from([0, 300, 3600])),
        max_gap_s=draw(st.sampled_from([60, 3600, 20_000])),
        rated_w=5000,
        cost=MachineCost(purchase=3600, life_hours=3600),
    )
    tariff = Tariff.model_validate(
        {"id": "t", "rate": 0.3, "band": [dict(b, name=f"b{k}") for k, b in enumerate(draw(bands))]}
    )
    jobs = None
    if draw(st.booleans()):  # explicit jobs, some reaching beyond the data
        span = int(minutes[-1])
        cuts = sorted(set(draw(st.lists(st.integers(-60, span + 60), max_size=8))))
        jobs = [
            ExplicitJob(f"J{k}", t0 + a * 60_000, t0 + b * 60_000)
            for k, (a, b) in enumerate(zip(cuts[::2], cuts[1::2], strict=False))
        ]
    return MachineReadings(t, watts, _counter(draw, n)), machine, tariff, jobs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shops())
def test_engine_matches_the_minute_by_minute_oracle(
    shop: tuple[MachineReadings, Machine, Tariff, list[ExplicitJob] | None],
) -> None:
    readings, machine, tariff, explicit = shop
    result = compute_machine("m", readings, machine, tariff, BERLIN, explicit)
    t, w = readings.t_ms.tolist(), readings.watts.tolist()
    # Explicit jobs take their spans, detection runs on the rest.
    taken = sorted((j.start_ms, j.end_ms) for j in explicit or [])
    spans = sorted(taken + detect(t, w, machine, taken))
    energy = interval_energy("m", readings, machine).wh.tolist()
    job_wh, day_wh, run_s = split(t, w, energy, spans, machine, tariff, BERLIN)

    jobs = [r for r in result.rows if r.kind == "job"]
    assert [(r.start_ms, r.end_ms) for r in jobs] == spans
    for k, row in enumerate(jobs):
        assert row.band_wh == pytest.approx(job_wh[k], abs=1e-6)
        assert row.run_s == pytest.approx(run_s[k], abs=1e-6)
    overhead = {r.day: r.band_wh for r in result.rows if r.kind == "overhead"}
    for day, wh in day_wh.items():
        assert overhead.get(day, (0.0,) * len(wh)) == pytest.approx(wh, abs=1e-6)

    total = math.fsum(r.energy_wh for r in result.rows)
    assert total == pytest.approx(result.stats.metered_wh, abs=1e-6)
    assert result.stats.metered_wh == pytest.approx(math.fsum(energy), abs=1e-6)
