"""Simulated power of one machine: a vectorised series following its profile and its jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.profile import NOISE_CLIP, Cycle, Profile
from gateway.engine.model import F64, I64

# What the machine is doing in each sample; selects the waveform shape for CT simulation.
OFF, IDLE, RUN = 0, 1, 2
I8 = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class PowerSeries:
    """One machine's true power on a regular grid, and the energy it integrates to."""

    t_ms: I64  # UTC ms since the epoch, evenly spaced
    watts: F64  # instantaneous power at t; the true signal is linear between samples
    state: I8  # OFF / IDLE / RUN
    energy_wh: F64  # cumulative trapezoid of watts from the first sample: the exact truth

    def between_wh(self, start: int, end: int) -> float:
        """True energy between two sample indices."""
        return float(self.energy_wh[end] - self.energy_wh[start])


def cumulative_wh(t_ms: I64, watts: F64) -> F64:
    """Cumulative trapezoid of power in Wh, 0 at the first sample."""
    steps = (watts[1:] + watts[:-1]) * 0.5 * np.diff(t_ms) / 3.6e6
    return np.concatenate(([0.0], np.cumsum(steps)))


def work_segments(
    cycle: Cycle | None, start: int, end: int, step_s: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Working segments [a, b) of a job spanning samples start..end: first and last are work."""
    if cycle is None:
        return np.array([[start, end + 1]], dtype=np.int64)
    span = end + 1 - start
    shortest = (cycle.work_s[0] + cycle.pause_s[0]) / step_s
    n = int(span // max(shortest, 1)) + 1
    work = np.maximum(np.rint(rng.uniform(*cycle.work_s, n) / step_s), 1)
    pause = np.rint(rng.uniform(*cycle.pause_s, n) / step_s)
    durations = np.column_stack((work, pause)).ravel().astype(np.int64)
    edges = start + np.concatenate(([0], np.cumsum(durations)))
    begun = int(np.searchsorted(edges, end + 1, side="left"))  # segments starting inside
    count = (begun + 1) // 2  # work segments among them (they sit at even positions)
    seg = np.column_stack((edges[0 : 2 * count : 2], edges[1 : 2 * count + 1 : 2]))
    # A trailing pause is dropped and the last work runs to the job's end: jobs end working.
    seg[-1, 1] = end + 1
    return seg


def _membership(n: int, segments: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Samples inside any of the [a, b) segments."""
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, segments[:, 0], 1)
    np.add.at(delta, segments[:, 1], -1)
    return np.cumsum(delta[:-1]) > 0


def simulate_power(
    profile: Profile,
    t_ms: I64,
    powered: tuple[int, int],
    jobs: Sequence[tuple[int, int]],
    rng: np.random.Generator,
) -> PowerSeries:
    """Power over the grid: off outside `powered` [a, b), idle inside, working in jobs."""
    n = len(t_ms)
    step_s = float(t_ms[1] - t_ms[0]) / 1000 if n > 1 else 1.0
    idx = np.arange(n)
    pw = profile.power
    job_starts = np.array([0, *(s for s, _ in jobs)], dtype=np.int64)  # 0: sentinel
    segs = [work_segments(profile.cycle, s, e, step_s, rng) for s, e in jobs]
    work = np.concatenate(segs) if segs else np.empty((0, 2), dtype=np.int64)

    on = _membership(n, np.array([powered], dtype=np.int64))
    run = _membership(n, work)
    state = np.where(run, RUN, np.where(on, IDLE, OFF)).astype(np.int8)

    # Each working segment cuts at its own level (material, tool, program): load variation.
    # Index 0 is a sentinel segment at sample 0, so every sample has a segment.
    seg_start = np.concatenate(([0], work[:, 0]))
    levels = np.concatenate(([0.0], rng.uniform(*pw.run_w, len(work))))
    seg = np.searchsorted(seg_start, idx, side="right") - 1
    since_seg_s = np.where(run, idx - seg_start[seg], 0) * step_s
    base = np.where(run, levels[seg], np.where(on, pw.idle_w, pw.off_w))

    sigma = np.where(run, pw.run_noise, np.where(on, pw.idle_noise, 0.0))
    noise = 1 + sigma * np.clip(rng.standard_normal(n), -NOISE_CLIP, NOISE_CLIP)
    watts = base * noise
    if profile.inrush is not None:
        # Spindle or motor start: the first samples of every working segment peak and decay.
        peak = profile.inrush.peak - 1
        watts *= np.where(run, 1 + peak * np.exp(-since_seg_s / profile.inrush.tau_s), 1.0)
    if profile.heater is not None:
        h = profile.heater
        job = np.searchsorted(job_starts, idx, side="right") - 1
        since_job_s = (idx - job_starts[job]) * step_s
        heating = (since_job_s < h.warmup_s) | (since_job_s % h.period_s < h.duty * h.period_s)
        watts += np.where(run & heating, h.w, 0.0)
    return PowerSeries(t_ms, watts, state, cumulative_wh(t_ms, watts))
