"""Jobs: detection rules, and explicit job lists checked before anything is computed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from engine_build import T0_MS, flat_tariff, machine, readings

from gateway.engine import ExplicitJob, compute_machine
from gateway.engine.jobs import detect_jobs
from gateway.engine.states import IDLE, OFF, RUNNING, machine_states, running_stretches
from gateway.errors import InputError

BERLIN = ZoneInfo("Europe/Berlin")


def jobs_of(
    t_s: Sequence[float], watts: Sequence[float], **kw: float
) -> list[tuple[float, float, bool]]:
    """Detected jobs as (start s, end s, open) relative to T0."""
    r = readings(t_s, watts)
    m = machine(**kw)
    long_iv = np.flatnonzero(np.diff(r.t_ms) > m.max_gap_s * 1000)
    spans = detect_jobs(r.t_ms, running_stretches(r.watts, m.run_above_w, long_iv), m)
    return [
        ((s - T0_MS) / 1000, (e - T0_MS) / 1000, o)
        for s, e, o in zip(spans.start_ms.tolist(), spans.end_ms.tolist(), spans.open, strict=True)
    ]


def test_states_use_strict_thresholds() -> None:
    w = np.array([0, 49.9, 50, 1000, 1000.1])
    assert machine_states(w, machine()).tolist() == [OFF, OFF, IDLE, IDLE, RUNNING]


def test_pause_shorter_than_merge_gap_merges_and_longer_splits() -> None:
    t = [0, 60, 120, 180, 240, 540, 600, 660]  # pause 180 -> 540 is 300 s (not < 300)
    w = [2000, 2000, 0, 2000, 2000, 2000, 2000, 0]
    assert jobs_of(t, w) == [(0.0, 240.0, False), (540.0, 600.0, True)]
    assert jobs_of(t, w, merge_gap_s=301) == [(0.0, 600.0, True)]


def test_running_readings_across_a_long_gap_are_separate_unless_merged() -> None:
    t = [0, 60, 120, 600, 660, 720]  # 120 -> 600 is longer than max_gap_s 120
    w = [2000] * 6
    assert jobs_of(t, w, merge_gap_s=300) == [(0.0, 120.0, False), (600.0, 720.0, True)]
    assert jobs_of(t, w, merge_gap_s=600) == [(0.0, 720.0, True)]


def test_merge_gap_zero_still_keeps_consecutive_running_readings_together() -> None:
    assert jobs_of([0, 60, 120, 180], [2000, 2000, 2000, 0], merge_gap_s=0) == [(0.0, 120.0, False)]


def test_minimum_length_and_lone_running_reading() -> None:
    t = [0, 30, 60, 400, 1000]
    w = [2000, 2000, 0, 2000, 0]
    assert jobs_of(t, w, min_job_s=30) == [(0.0, 30.0, False)]
    assert jobs_of(t, w, min_job_s=31) == []
    assert jobs_of(t, w, min_job_s=0) == [(0.0, 30.0, False)]  # 400 alone has no duration


def test_job_is_open_while_a_running_reading_could_still_join() -> None:
    t = [0, 60, 120, 180, 419]  # the data ends 299 s after the last running reading
    assert jobs_of(t, [2000, 2000, 2000, 0, 0]) == [(0.0, 120.0, True)]
    assert jobs_of([*t[:-1], 420], [2000, 2000, 2000, 0, 0]) == [(0.0, 120.0, False)]


def _explicit(*jobs: tuple[str, int, int]) -> list[ExplicitJob]:
    return [ExplicitJob(j, T0_MS + a * 1000, T0_MS + b * 1000) for j, a, b in jobs]


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (
            _explicit(("A", 0, 600), ("B", 300, 900)),
            r"machine m: jobs 'A' and 'B' overlap \('A' ends 2026-11-03T07:10:00.000Z, "
            r"'B' starts 2026-11-03T07:05:00.000Z\)",
        ),
        (_explicit(("A", 0, 600), ("C", 600, 700), ("B", 100, 200)), "jobs 'A' and 'B' overlap"),
        (_explicit(("A", 600, 600)), "job 'A' ends .* at or before it starts"),
        (_explicit(("A", 0, 60), ("A", 100, 160)), "job id 'A' is given twice"),
    ],
)
def test_bad_explicit_jobs_are_refused(jobs: list[ExplicitJob], message: str) -> None:
    r = readings([0, 60], [2000, 2000])
    with pytest.raises(InputError, match=message):
        compute_machine("m", r, machine(), flat_tariff(), BERLIN, jobs)


def test_touching_explicit_jobs_are_fine_and_without_detection_an_empty_list_is_no_jobs() -> None:
    r = readings([0, 60, 120], [1200, 1200, 1200])
    rows = compute_machine(
        "m", r, machine(), flat_tariff(), BERLIN, _explicit(("A", 0, 60), ("B", 60, 120))
    ).rows
    assert [(x.kind, x.job_id) for x in rows] == [("overhead", ""), ("job", "A"), ("job", "B")]
    assert [x.energy_wh for x in rows] == pytest.approx([0.0, 20.0, 20.0])
    rows = compute_machine("m", r, machine(), flat_tariff(), BERLIN, [], detect=False).rows
    assert [x.kind for x in rows] == ["overhead"]
    assert rows[0].energy_wh == pytest.approx(40.0)


def test_explicit_jobs_take_their_spans_and_detection_runs_on_the_rest() -> None:
    # Running all along 0..1200 s with one pause at 600; the operator pressed start/stop
    # for 300..480 only. Before it and after it, the machine's other jobs are detected.
    t = list(range(0, 1260, 60))
    w = [2000.0] * len(t)
    w[10] = 0.0  # 600 s: a pause shorter than merge_gap_s (300 s)
    r = readings(t, w)
    job = ExplicitJob("WO-7", T0_MS + 300_000, T0_MS + 480_000, "acme")
    rows = compute_machine("m", r, machine(), flat_tariff(), BERLIN, [job]).rows
    jobs = [
        (x.job_id, (x.start_ms - T0_MS) // 1000, (x.end_ms - T0_MS) // 1000, x.open)
        for x in rows
        if x.kind == "job"
    ]
    day = "m-" + datetime.fromtimestamp(T0_MS / 1000, BERLIN).strftime("%Y%m%d")
    # The detected job after WO-7 merges across the short pause but never across WO-7;
    # the one before it is closed: WO-7 came after it.
    assert jobs == [
        (f"{day}-001", 0, 240, False),
        ("WO-7", 300, 480, False),
        (f"{day}-002", 480, 1200, True),
    ]
    # Every Wh is in one row: 20 intervals of 2000 W for 60 s, two of them half at 0 W.
    assert sum(x.energy_wh for x in rows) == pytest.approx(18 * 2000 / 60 + 2 * 1000 / 60)


def test_without_explicit_jobs_detection_is_unchanged() -> None:
    t = list(range(0, 600, 60))
    r = readings(t, [2000.0] * len(t))
    alone = compute_machine("m", r, machine(), flat_tariff(), BERLIN).rows
    assert compute_machine("m", r, machine(), flat_tariff(), BERLIN, []).rows == alone


def test_a_cut_splits_the_job_around_it_into_two_that_share_its_energy() -> None:
    t = list(range(0, 660, 60))
    r = readings(t, [2000.0] * len(t))
    whole = compute_machine("m", r, machine(), flat_tariff(), BERLIN).rows
    cut = np.array([T0_MS + 240_000, T0_MS + 9_999_000], dtype=np.int64)  # 2nd: no job there
    rows = compute_machine("m", r, machine(), flat_tariff(), BERLIN, cuts=cut).rows
    (job,) = [x for x in whole if x.kind == "job"]
    first, second = [x for x in rows if x.kind == "job"]
    assert (first.job_id, second.job_id) == (job.job_id, f"{job.job_id}-2")
    assert (first.end_ms, second.start_ms) == (T0_MS + 240_000, T0_MS + 240_000)
    assert (first.open, second.open) == (False, job.open)
    assert first.energy_wh + second.energy_wh == pytest.approx(job.energy_wh)
    assert first.energy_wh == pytest.approx(4 * 2000 / 60)


def test_no_detected_job_runs_across_an_explicit_job_between_two_readings() -> None:
    # Running readings at 0, 60, 180, 240 s; the operator's job 100-170 s holds no reading.
    r = readings([0, 60, 180, 240], [2000.0] * 4)
    job = ExplicitJob("WO-1", T0_MS + 100_000, T0_MS + 170_000)
    rows = compute_machine("m", r, machine(), flat_tariff(), BERLIN, [job]).rows
    spans = [
        ((x.start_ms - T0_MS) // 1000, (x.end_ms - T0_MS) // 1000) for x in rows if x.kind == "job"
    ]
    assert spans == [(0, 60), (100, 170), (180, 240)]
