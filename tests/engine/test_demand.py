"""Demand charge arithmetic: quarter-hour energy and cents shared without loss."""

from __future__ import annotations

import numpy as np

from gateway.engine.demand import QUARTER_MS, quarter_hour_wh, quarter_starts, share_cents


def test_shared_cents_add_up_and_the_left_over_cent_goes_to_the_largest_fraction() -> None:
    assert share_cents(8000, np.array([1000.0, 666.667, 333.333])).tolist() == [4000, 2667, 1333]
    assert share_cents(100, np.array([1.0, 1.0, 1.0])).tolist() == [34, 33, 33]  # earlier wins
    assert share_cents(0, np.array([1.0])).tolist() == [0]
    assert share_cents(5, np.array([0.0, 0.0])).tolist() == [0, 0]  # nobody made a peak
    shares = share_cents(99_999, np.random.default_rng(1).random(37))
    assert shares.sum() == 99_999 and (shares >= 0).all()


def test_quarter_hours_split_an_interval_uniformly() -> None:
    # One 30-minute interval from 10:05 to 10:35 (UTC) holding 600 Wh.
    t = np.array([10 * 3_600_000 + 5 * 60_000, 10 * 3_600_000 + 35 * 60_000], dtype=np.int64)
    starts = quarter_starts(10 * 3_600_000, 11 * 3_600_000)
    assert starts.tolist() == [10 * 3_600_000 + k * QUARTER_MS for k in range(4)]
    got = quarter_hour_wh(t, np.array([600.0]), starts)
    np.testing.assert_allclose(got, [200.0, 300.0, 100.0, 0.0])
