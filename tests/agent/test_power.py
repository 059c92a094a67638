"""Simulated power: jobs show as running stretches, the truth is the series' exact integral."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.power import IDLE, OFF, RUN, work_segments
from agent.profile import Cycle, builtin_profile
from agent.shopday import ShopDay, simulate_shop_day
from gateway.config import Machine


def running_stretches(watts: npt.NDArray[np.float64], m: Machine) -> list[tuple[int, int]]:
    """Reference detection at 1 s: samples above run_above_w, merged across short gaps."""
    run = np.concatenate(([0], (watts > m.run_above_w).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(run))
    starts, ends = edges[0::2], edges[1::2] - 1
    split = starts[1:] - ends[:-1] >= m.merge_gap_s
    first = starts[np.concatenate(([True], split))]
    last = ends[np.concatenate((split, [True]))]
    return [(int(a), int(b)) for a, b in zip(first, last, strict=True) if b - a >= m.min_job_s]


def test_scheduled_jobs_are_the_running_stretches_at_their_times(shop_day: ShopDay) -> None:
    for machine, truth in shop_day.truth.items():
        p = shop_day.power[machine]
        m = builtin_profile(truth.profile).machine
        t0 = int(p.t_ms[0])
        scheduled = [((j.start_ms - t0) // 1000, (j.end_ms - t0) // 1000) for j in truth.jobs]
        assert running_stretches(p.watts, m) == scheduled, machine


def test_the_demo_day_has_jobs_in_the_night_and_in_the_peak_band(shop_day: ShopDay) -> None:
    def overlaps(start: str, end: str) -> bool:
        a, b = (
            dt.datetime.combine(shop_day.day, dt.time.fromisoformat(t), shop_day.tz)
            for t in (start, end)
        )
        lo, hi = a.timestamp() * 1000, b.timestamp() * 1000
        return any(
            j.start_ms < hi and j.end_ms > lo for t in shop_day.truth.values() for j in t.jobs
        )

    assert all(t.jobs for t in shop_day.truth.values())
    assert overlaps("00:00", "06:00") and overlaps("22:00", "23:59")  # night band
    assert overlaps("16:00", "20:00")  # weekday peak band (the demo day is a Tuesday)
    assert shop_day.day.weekday() == 1


def test_states_follow_the_shift_and_stay_inside_the_thresholds(shop_day: ShopDay) -> None:
    for machine, truth in shop_day.truth.items():
        p, m = shop_day.power[machine], builtin_profile(truth.profile).machine
        assert (p.watts[p.state == OFF] < m.off_below_w).all(), machine
        assert (p.watts[p.state == IDLE] < m.run_above_w).all(), machine
        assert (p.watts[p.state == RUN] > m.run_above_w).all(), machine
        assert p.watts.max() <= m.rated_w, machine
        assert p.state[0] == p.state[-1] == OFF, machine


def test_true_energy_is_the_exact_integral_of_the_series(shop_day: ShopDay) -> None:
    for machine, truth in shop_day.truth.items():
        p = shop_day.power[machine]
        assert truth.energy_wh == pytest.approx(np.trapezoid(p.watts, p.t_ms) / 3.6e6, rel=1e-9)
        for job, wh in zip(truth.jobs, truth.job_wh, strict=True):
            inside = (p.t_ms >= job.start_ms) & (p.t_ms <= job.end_ms)
            exact = np.trapezoid(p.watts[inside], p.t_ms[inside]) / 3.6e6
            assert wh == pytest.approx(exact, rel=1e-9)


def test_a_spindle_start_peaks_then_settles(shop_day: ShopDay) -> None:
    p, truth = shop_day.power["cnc-01"], shop_day.truth["cnc-01"]
    starts = [(j.start_ms - int(p.t_ms[0])) // 1000 for j in truth.jobs]
    assert all(p.watts[s] > p.watts[s + 5] for s in starts)


def test_the_printer_bed_heats_up_then_cycles_at_its_duty(shop_day: ShopDay) -> None:
    printer = builtin_profile("fdm-printer")
    assert printer.heater is not None
    p, truth = shop_day.power["printer-01"], shop_day.truth["printer-01"]
    heater_on = p.watts > printer.power.run_w[1] * (1 + 3 * printer.power.run_noise)
    for job in truth.jobs:
        s, e = ((ms - int(p.t_ms[0])) // 1000 for ms in (job.start_ms, job.end_ms))
        warm = int(printer.heater.warmup_s)
        assert heater_on[s : s + warm].all()
        assert abs(heater_on[s + warm : e].mean() - printer.heater.duty) < 0.03


def test_a_dst_day_has_23_or_25_hours_of_samples() -> None:
    spring = simulate_shop_day(day=dt.date(2026, 3, 29))
    autumn = simulate_shop_day(day=dt.date(2026, 10, 25))
    assert len(spring.power["cnc-01"].t_ms) == 23 * 3600
    assert len(autumn.power["cnc-01"].t_ms) == 25 * 3600


CYCLE = Cycle(work_s=(30.0, 300.0), pause_s=(5.0, 90.0))


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 10_000),
    span=st.integers(0, 20_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_job_starts_and_ends_working_with_pauses_of_the_profile(
    start: int, span: int, seed: int
) -> None:
    seg = work_segments(CYCLE, start, start + span, 1.0, np.random.default_rng(seed))
    assert seg[0, 0] == start and seg[-1, 1] == start + span + 1
    assert (seg[:, 1] > seg[:, 0]).all()
    pauses = seg[1:, 0] - seg[:-1, 1]
    assert ((pauses >= CYCLE.pause_s[0]) & (pauses <= CYCLE.pause_s[1])).all()
