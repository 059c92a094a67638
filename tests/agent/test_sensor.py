"""What the sensors deliver: lost readings, counters that bridge them, reboots that reset."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agent.power import PowerSeries
from agent.sensor import observe
from agent.shopday import REBOOT_S, ShopDay


def _local(shop_day: ShopDay, hhmm: str) -> int:
    moment = dt.datetime.combine(shop_day.day, dt.time.fromisoformat(hhmm), shop_day.tz)
    return int(moment.timestamp() * 1000)


def test_the_counter_is_the_integral_of_power_between_any_two_readings(shop_day: ShopDay) -> None:
    for machine, truth in shop_day.truth.items():
        if not truth.counter:
            continue
        p, s = shop_day.power[machine], shop_day.sensors[machine]
        step = np.diff(s.wh[s.present])
        exact = np.diff(p.energy_wh[s.present])
        reset = step < 0
        np.testing.assert_allclose(step[~reset], exact[~reset], rtol=1e-9, atol=1e-6)
        assert reset.sum() == sum(o.counter_reset for o in truth.outages), machine


def test_an_outage_loses_readings_but_not_counted_energy(shop_day: ShopDay) -> None:
    p, s = shop_day.power["cnc-01"], shop_day.sensors["cnc-01"]
    (outage,) = shop_day.truth["cnc-01"].outages
    assert outage.start_ms == _local(shop_day, "09:40") - 1000
    assert outage.end_ms == _local(shop_day, "09:52")
    lost = (p.t_ms > outage.start_ms) & (p.t_ms < outage.end_ms)
    assert not s.present[lost].any() and lost.sum() == 12 * 60
    before, after = (np.flatnonzero(p.t_ms == t)[0] for t in (outage.start_ms, outage.end_ms))
    assert s.wh[after] - s.wh[before] == pytest.approx(outage.wh, rel=1e-9)
    assert outage.wh > 0 and not outage.counter_reset


def test_a_power_only_sensor_reports_no_counter(shop_day: ShopDay) -> None:
    readings = shop_day.readings()["cnc-02"]
    assert np.isnan(readings.wh).all() and len(readings) > 0
    (outage,) = shop_day.truth["cnc-02"].outages
    assert outage.end_ms - outage.start_ms == 7 * 60 * 1000 + 1000


def test_a_reboot_restarts_the_counter_at_zero_after_a_silence(shop_day: ShopDay) -> None:
    p, s = shop_day.power["lathe-01"], shop_day.sensors["lathe-01"]
    (reboot,) = shop_day.truth["lathe-01"].outages
    assert reboot.counter_reset
    assert reboot.end_ms - reboot.start_ms == (REBOOT_S + 1) * 1000
    after = np.flatnonzero(p.t_ms == reboot.end_ms)[0]
    assert s.wh[after] == 0.0
    assert s.wh[after - REBOOT_S - 1] > 1e5  # the months-old counter before the reboot


def test_overlapping_losses_make_one_outage() -> None:
    t = np.arange(0, 100_000, 1000, dtype=np.int64)
    watts = np.full(len(t), 100.0)
    power = PowerSeries(t, watts, np.zeros(len(t), np.int8), np.arange(len(t)) * 100 / 3600)
    view = observe(power, counter=True, counter_start_wh=5.0, lost=[(10, 20), (15, 30)], reboots=[])
    (outage,) = view.outages
    assert (outage.start_ms, outage.end_ms) == (9000, 30000)
    assert outage.wh == pytest.approx(21 * 100 / 3600)
    assert view.wh[0] == 5.0


def test_a_loss_at_the_edge_of_the_day_is_refused() -> None:
    t = np.arange(0, 10_000, 1000, dtype=np.int64)
    power = PowerSeries(t, np.zeros(10), np.zeros(10, np.int8), np.zeros(10))
    with pytest.raises(ValueError, match="first or last sample"):
        observe(power, counter=False, counter_start_wh=0.0, lost=[(0, 3)], reboots=[])
