"""Energy per interval: counters win, repairs are counted, gaps never get invented energy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from engine_build import machine, readings

from gateway.engine.energy import IntervalEnergy, interval_energy
from gateway.errors import InputError

NAN = math.nan


def energy(t_s: list[float], watts: list[float], wh: list[float] | None = None) -> IntervalEnergy:
    """The energy step for readings at T0 + t_s on the default 5 kW test machine."""
    return interval_energy("m", readings(t_s, watts, wh), machine())


def test_power_only_is_the_trapezoid() -> None:
    e = energy([0, 60, 120], [1000, 2000, 0])
    assert e.wh.tolist() == pytest.approx([25.0, 1000 / 60])
    assert (e.gaps, e.counter_resets, e.implausible_jumps) == (0, 0, 0)


def test_power_is_not_integrated_across_a_long_gap() -> None:
    e = energy([0, 60, 3660, 3720], [1200, 1200, 1200, 1200])
    assert e.wh.tolist() == pytest.approx([20.0, 0.0, 20.0])
    assert (e.gaps, e.gap_s) == (1, 3600.0)


def test_counter_is_exact_across_a_long_gap() -> None:
    e = energy([0, 60, 3660], [1200, 1200, 1200], [10, 30, 1230])
    assert e.wh.tolist() == pytest.approx([20.0, 1200.0])
    assert e.gaps == 0


def test_mixed_counters_use_the_counter_only_where_both_ends_have_one() -> None:
    # reading 2 has no counter: intervals 1-2 and 2-3 fall back to power; 3-4 is long
    # and one end has no counter, so it is a gap
    e = energy([0, 60, 120, 180, 600], [1200, 1200, 1200, 1200, 1200], [0, 19, NAN, 57, NAN])
    assert e.wh.tolist() == pytest.approx([19.0, 20.0, 20.0, 0.0])
    assert (e.gaps, e.gap_s) == (1, 420.0)


def test_counter_drop_to_zero_and_back_is_one_glitch() -> None:
    # a Modbus read that returned 0 once: not a reset plus a jump; the counters around it
    # (548 -> 644) are the energy of both intervals, shared by power
    e = energy([0, 60, 120, 180], [3000] * 4, [500, 548, 0, 644])
    assert (e.counter_resets, e.implausible_jumps) == (0, 1)
    assert e.wh.tolist() == pytest.approx([48.0, 48.0, 48.0])


def test_reset_on_the_last_reading_uses_the_new_value() -> None:
    e = energy([0, 60, 120], [3000] * 3, [500, 548, 12])
    assert e.counter_resets == 1
    assert e.wh.tolist() == pytest.approx([48.0, 12.0])


def test_jump_within_tolerance_is_accepted_and_above_it_is_not() -> None:
    # bound for 60 s at 5000 W: 5000 x 1.1 / 60 + 1 = 92.67 Wh
    ok = energy([0, 60], [3000, 3000], [0, 92.6])
    bad = energy([0, 60], [3000, 3000], [0, 92.7])
    assert (ok.implausible_jumps, ok.wh.tolist()) == (0, [92.6])
    assert (bad.implausible_jumps, bad.wh.tolist()) == (1, pytest.approx([50.0]))


def test_a_jump_across_a_long_gap_is_a_gap_too() -> None:
    # counter says 1 MWh in an hour on a 5 kW machine: implausible, and power cannot
    # cover a long gap either
    e = energy([0, 60, 3660], [3000] * 3, [0, 50, 1e6])
    assert (e.implausible_jumps, e.gaps, e.gap_s) == (1, 1, 3600.0)
    assert e.wh.tolist() == pytest.approx([50.0, 0.0])


def test_times_must_increase() -> None:
    with pytest.raises(
        InputError, match=r"machine m: .*not strictly increasing.*2026-11-03T07:01:00.000Z"
    ):
        energy([0, 60, 60], [1, 2, 3])


def test_single_reading_has_no_intervals() -> None:
    e = energy([0], [1000], [5])
    assert len(e.wh) == 0 and e.gaps == 0


def test_power_only_energy_is_vectorised_over_chunks() -> None:
    # more readings than one chunk: the chunked trapezoid must agree with np.trapezoid
    n = 100_001
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 4000, n)
    t = np.cumsum(rng.uniform(0.5, 1.5, n))
    e = interval_energy("m", readings(t.tolist(), w.tolist()), machine())
    t_ms = np.round(t * 1000)
    assert e.wh.sum() == pytest.approx(np.trapezoid(w, t_ms) / 3_600_000, rel=1e-12)


def test_a_jump_is_judged_against_its_own_interval() -> None:
    # 50 Wh in 1 s is impossible for 5 kW even though the next interval is 10 minutes long
    e = energy([0, 1, 601], [3000] * 3, [0, 50, 60])
    assert e.implausible_jumps == 1
    assert e.wh.tolist() == pytest.approx([3000 / 3600, 10.0])


def test_glitch_and_reset_across_the_scan_chunks_of_a_long_series() -> None:
    # 100 000 one-second readings at 3600 W (1 Wh/s): a glitch on reading 32 768, where
    # one internal chunk of intervals ends and the next begins, and a reset later on
    n = 100_000
    wh = np.arange(n, dtype=np.float64)
    wh[1 << 15] = 1e9
    wh[70_000:] -= 69_999.5  # the counter restarts: 0.5 Wh at reading 70 000
    r = readings(np.arange(n).tolist(), [3600.0] * n, wh.tolist())
    e = interval_energy("m", r, machine())
    assert (e.implausible_jumps, e.counter_resets) == (1, 1)
    assert e.wh.sum() == pytest.approx(n - 1 - 0.5)


def test_a_glitch_at_a_15_minute_cadence_is_bridged_by_the_counters() -> None:
    # a meter read every 15 min (longer than max_gap_s = 120 s), one corrupt counter: the
    # counters around it say 1000 Wh over 30 min, shared by power (2000 W, then 4000 W
    # at the last reading): trapezoids 500 and 750 Wh -> 400 and 600 Wh
    e = energy([0, 900, 1800, 2700], [2000, 2000, 2000, 4000], [0, 500, 9e9, 1500])
    assert (e.implausible_jumps, e.gaps, e.gap_s) == (1, 0, 0.0)
    assert e.wh.tolist() == pytest.approx([500.0, 400.0, 600.0])


def test_glitches_that_would_overlap_bridge_only_the_first() -> None:
    # both 1e9 readings look like glitches (0 -> 50 and 1e9 -> 1e9 + 50 are plausible);
    # bridging both would share interval 1 twice: the first is bridged, the rest is a jump
    e = energy([0, 60, 120, 180], [3000] * 4, [0, 1e9, 50, 1e9 + 50])
    assert (e.implausible_jumps, e.counter_resets) == (2, 0)
    assert e.wh.tolist() == pytest.approx([25.0, 25.0, 50.0])


def coarse(t_s: list[float], watts: list[float], wh: list[float]) -> IntervalEnergy:
    """The energy step for a counter that moves in 100 Wh steps, on a 22 kW machine."""
    m = machine(rated_w=22_000, counter_resolution_wh=100)
    return interval_energy("m", readings(t_s, watts, wh), m)


def test_a_coarse_step_is_plausible_and_shared_with_the_flat_polls_before_it() -> None:
    # 5 s polls at 21.6 kW (30 Wh each): bound 22 kW x 1.1 x 5 s + 100 Wh = 133.6 Wh
    e = coarse([0, 5, 10, 15, 20], [21_600] * 5, [500, 500, 500, 500, 600])
    assert (e.implausible_jumps, e.wh.tolist()) == (0, pytest.approx([25.0] * 4))


def test_a_coarse_step_is_shared_by_power() -> None:
    # trapezoids 0, 10, 20 Wh (0, 0, 7200, 7200 W over 5 s): the step goes 0 : 1/3 : 2/3
    e = coarse([0, 5, 10, 15], [0, 0, 7200, 7200], [500, 500, 500, 530])
    assert e.wh.tolist() == pytest.approx([0.0, 10.0, 20.0])


def test_a_coarse_step_without_power_is_shared_by_time() -> None:
    e = coarse([0, 10, 40], [0, 0, 0], [500, 500, 600])
    assert e.wh.tolist() == pytest.approx([25.0, 75.0])


def test_flat_polls_the_counter_has_not_settled_yet_stay_at_zero() -> None:
    # the data ends before the counter moves again, or a long interval (max_gap_s 120 s)
    # ends the flat run: only the counter can say how much that was, and it has not yet
    e = coarse([0, 5, 10, 15, 215, 220], [21_600] * 6, [500, 600, 600, 600, 700, 700])
    assert e.wh.tolist() == pytest.approx([100.0, 0.0, 0.0, 100.0, 0.0])
    assert e.gaps == 0


def test_a_coarse_counter_over_an_hour_near_rated_power_is_exact() -> None:
    # the EM24: steps of 100 Wh, 21.6 kW, 5 s polls, rated 22 kW -> 21.6 kWh
    t = np.arange(721) * 5.0
    wh = 1_234_500 + (30 * np.arange(721)) // 100 * 100
    e = coarse(t.tolist(), [21_600.0] * 721, wh.astype(float).tolist())
    assert (e.implausible_jumps, e.gaps) == (0, 0)
    assert e.wh.sum() == pytest.approx(21_600.0)
    assert e.wh.min() == pytest.approx(25.0) and e.wh.max() == pytest.approx(100 / 3)


def test_a_flat_interval_power_says_was_more_than_a_step_keeps_the_counters_zero() -> None:
    # 0 W, then 3400 W: the trapezoid says 56.7 Wh before the counter first moves, but a
    # 1 Wh counter that stood still used less than 1 Wh: the machine started at 10:00
    e = energy([0, 120, 240], [0, 3400, 3400], [1000, 1000, 1113])
    assert e.wh.tolist() == pytest.approx([0.0, 113.0])


def test_a_coarse_step_whose_flat_polls_cross_a_scan_chunk_edge_is_shared_over_them_all() -> None:
    # 1 s polls at 21.6 kW (6 Wh each), 100 Wh steps every 16-17 polls: the flat polls
    # before one step lie either side of interval 32 768, where one internal chunk of
    # intervals ends and the next begins; constant power shares the step equally
    n = 40_000
    wh = 1_234_500 + (6 * np.arange(n)) // 100 * 100
    e = coarse(np.arange(n).tolist(), [21_600.0] * n, wh.astype(float).tolist())
    steps = np.flatnonzero(np.diff(wh))
    k = int(np.searchsorted(steps, 1 << 15))
    span = e.wh[steps[k - 1] + 1 : steps[k] + 1]
    assert steps[k - 1] + 1 < 1 << 15 <= steps[k]
    assert span.tolist() == pytest.approx([100 / len(span)] * len(span))
    assert e.wh[: steps[-1] + 1].min() > 0.0  # every poll before the last step has its share
