"""Dedup, placement and the gateway counter: every reading once, energy exact across boots."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inputs.protocol import SensorReading
from gateway.inputs.tracker import SensorSpec, Tracker

T0 = 1_763_805_600_000
SPEC = {"s1": SensorSpec("cnc-01", (), "mqtt:s1")}


def rd(
    b: int,
    s: int,
    wh: float | None = None,
    p: float = 360.0,
    t: int | bool | None = True,
    x: int = 0,
    channels: list[list[float] | None] | None = None,
) -> SensorReading:
    """A 10 s reading; by default t follows (b, s) and the counter grows 1 Wh per window."""
    u = 5_000 + 10_000 * s
    when = T0 + b * 86_400_000 + u if t is True else (None if t is False else t)
    ch = channels if channels is not None else [[1.5, p, float(s) if wh is None else wh]]
    return SensorReading(b, s, when, u, 10_000, 4800, None, ch, 0, x, 0, -60, None)


def run(tracker: Tracker, *readings: SensorReading) -> list[tuple[int, float]]:
    return [(r.t_ms, r.wh) for r in tracker.process([("s1", r) for r in readings])]


def test_a_redelivered_reading_is_stored_once_and_counted() -> None:
    tr = Tracker(SPEC)
    out = run(tr, rd(1, 0), rd(1, 1), rd(1, 1), rd(1, 0))
    assert len(out) == 2
    assert tr.counts["s1"]["duplicates"] == 2 and tr.counts["s1"]["readings"] == 2


def test_a_redelivery_after_the_sensor_rebooted_is_a_duplicate_not_lost_data() -> None:
    tr = Tracker(SPEC)
    run(tr, rd(17, 5), rd(18, 0))
    assert run(tr, rd(17, 5)) == []
    assert tr.counts["s1"]["duplicates"] == 1 and tr.counts["s1"]["old_boot"] == 0
    assert run(tr, rd(17, 6)) == []  # never seen, but its boot is over: counted
    assert tr.counts["s1"]["old_boot"] == 1


def test_a_late_reading_fills_its_gap_with_the_counter_of_its_boot() -> None:
    tr = Tracker(SPEC)
    run(tr, rd(1, 0, wh=100.0), rd(1, 3, wh=103.0))
    assert tr.counts["s1"]["missing"] == 2
    (late,) = run(tr, rd(1, 1, wh=101.0))
    assert tr.counts["s1"]["late"] == 1 and tr.counts["s1"]["missing"] == 1
    assert late[1] == pytest.approx(101.0 - 100.0 + 1.0)  # same offset as its neighbours


def test_readings_discarded_by_the_sensor_are_not_counted_missing() -> None:
    tr = Tracker(SPEC)
    run(tr, rd(1, 0), rd(1, 10, x=9))
    assert tr.counts["s1"]["sensor_discarded"] == 9 and tr.counts["s1"]["missing"] == 0


def test_an_unsynced_reading_is_placed_by_a_synced_one_of_its_boot() -> None:
    tr = Tracker(SPEC)
    clock = T0 + 86_400_000 + 15_000  # the synced reading's t
    out = run(tr, rd(1, 0, t=False), rd(1, 1), rd(1, 2, t=False))
    assert [t for t, _ in out] == [clock - 10_000, clock, clock + 10_000]
    # After a reboot the clock syncs only later, maybe batches later: parked until then.
    assert run(tr, rd(2, 0, t=False), rd(2, 1, t=False)) == []
    clock = T0 + 2 * 86_400_000 + 25_000
    assert [t for t, _ in run(tr, rd(2, 2))] == [clock - 20_000, clock - 10_000, clock]
    # A boot that never syncs: its readings have no time, counted when the next boot starts.
    assert run(tr, rd(3, 0, t=False), rd(4, 0)) != []
    assert tr.counts["s1"]["unsynced"] == 1 and tr.counts["s1"]["readings"] == 3 + 3 + 1


def test_the_gateway_counter_goes_on_across_a_power_cut_by_the_first_windows_energy() -> None:
    tr = Tracker(SPEC)
    before = run(tr, rd(1, 0, wh=1000.0), rd(1, 1, wh=1001.0))
    # Power cut: the counter restarts from flash, 20 Wh behind what was published.
    after = run(tr, rd(2, 0, wh=981.0, p=720.0), rd(2, 1, wh=983.0))
    gc = [wh for _, wh in before + after]
    assert gc[1] - gc[0] == pytest.approx(1.0)
    assert gc[2] - gc[1] == pytest.approx(720.0 * 10 / 3600)  # p * w of the boot's first window
    assert gc[3] - gc[2] == pytest.approx(2.0)  # then differences again
    assert tr.counts["s1"]["boots"] == 1


def test_a_meter_wrap_within_a_boot_continues_the_counter() -> None:
    tr = Tracker(SPEC)
    out = run(tr, rd(1, 0, wh=9_999_990.0), rd(1, 1, wh=3.0, p=3600.0), rd(1, 2, wh=13.0))
    gc = [wh for _, wh in out]
    assert gc[1] - gc[0] == pytest.approx(10.0) and gc[2] - gc[1] == pytest.approx(10.0)
    assert tr.counts["s1"]["counter_resets"] == 1


def test_summed_channels_and_a_stale_meter_channel() -> None:
    tr = Tracker({"s1": SensorSpec("m", (0, 2), "mqtt:s1")})

    def three(s: int, meter: list[float] | None) -> SensorReading:
        return rd(1, s, channels=[[1.0, 100.0, 10.0 * s], [9.0, 999.0, 0.0], meter])

    out = tr.process([("s1", three(0, [2.0, 50.0, 500.0])), ("s1", three(1, None))])
    assert len(out) == 1 and out[0].watts == 150.0  # channel 1 is not summed
    assert tr.counts["s1"]["stale"] == 1
    (later,) = tr.process([("s1", three(2, [2.0, 50.0, 503.0]))])
    assert later.wh - out[0].wh == pytest.approx(
        20.0 + 3.0
    )  # the meter's counter covers the stale window


def test_state_survives_a_restart_through_dump_and_load() -> None:
    readings = [rd(1, 0), rd(1, 1, t=False), rd(1, 2), rd(2, 0, wh=0.5), rd(2, 1, wh=1.5)]
    whole = Tracker(SPEC)
    expected = run(whole, *readings, *readings)
    first = Tracker(SPEC)
    got = run(first, *readings[:3])
    second = Tracker(SPEC)
    second.load(first.dump())
    got += run(second, *readings[3:], *readings)
    assert got == expected and second.counts["s1"]["duplicates"] == 5


def test_a_sensor_sending_in_order_keeps_a_small_state() -> None:
    # Its state is written with every batch: a full window must not cost 256 hex digits.
    tr = Tracker(SPEC)
    run(tr, *(rd(1, s) for s in range(2000)))
    [(_, text)] = tr.dump()
    assert len(text) < 100
    again = Tracker(SPEC)
    again.load([("s1", text)])
    assert run(again, rd(1, 999), rd(1, 1999), rd(1, 2000)) == run(
        tr, rd(1, 999), rd(1, 1999), rd(1, 2000)
    )
    assert again.counts["s1"]["duplicates"] == 2


@settings(max_examples=150, deadline=None)
@given(
    boots=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    lags=st.lists(st.floats(0, 20), min_size=4, max_size=4),
    deliveries=st.lists(st.integers(1, 3), min_size=48, max_size=48),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    restart=st.booleans(),
)
def test_every_reading_once_and_energy_exact_whatever_the_redeliveries(
    boots: list[int], lags: list[float], deliveries: list[int], cuts: list[int], restart: bool
) -> None:
    # The sensor's truth: per boot, a run of readings; the counter restarts `lag` Wh behind.
    truth: list[SensorReading] = []
    wh = 0.0
    for b, n in enumerate(boots, start=1):
        wh -= lags[b - 1] if b > 1 else 0.0
        for s in range(n):
            wh += 1.0
            truth.append(rd(b, s, wh=wh))
    # At-least-once delivery: a reading repeats right away or after the next one.
    stream: list[SensorReading] = []
    for k, r in enumerate(truth):
        stream += [r] * min(deliveries[k], 2)
        if deliveries[k] == 3 and k > 0:
            stream.append(truth[k - 1])
    tracker = Tracker(SPEC)
    saved: dict[str, str] = {}  # the state table: dump() gives the rows to upsert
    out: list[tuple[int, float]] = []
    edges = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for a, b in itertools.pairwise(edges):
        out += run(tracker, *stream[a:b])
        saved.update(tracker.dump())
        if restart:
            tracker = Tracker(SPEC)
            tracker.load(saved.items())
    assert [t for t, _ in out] == [r.t for r in truth]
    gc = [g for _, g in out]
    # Energy: 1 Wh per window within a boot, and p * w (1 Wh at 360 W) at each boot change.
    assert all(math.isclose(b - a, 1.0) for a, b in itertools.pairwise(gc))
