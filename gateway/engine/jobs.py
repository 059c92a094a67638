"""Jobs: detected from running stretches, or given explicitly and checked for overlaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from gateway.config import Machine
from gateway.engine.localtime import iso_utc
from gateway.engine.model import I64, ExplicitJob
from gateway.engine.states import Stretches
from gateway.errors import InputError


@dataclass(frozen=True, slots=True)
class JobSpans:
    """Non-overlapping job spans sorted by start (UTC ms), with what the rows need."""

    start_ms: I64
    end_ms: I64
    open: list[bool]
    ids: list[str]  # "": a detected job, named by the rows step
    customers: list[str]

    def __len__(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True, slots=True)
class Held:
    """A detected job that runs through the first reading, begun before it: the readings
    start at a checkpoint of the day, the part of the job before it is counted elsewhere."""

    start_ms: int
    job_id: str


def detect_jobs(
    t_ms: I64,
    stretches: Stretches,
    machine: Machine,
    region: I64 | None = None,
    held: Held | None = None,
) -> JobSpans:
    """Running stretches merged across pauses shorter than merge_gap_s; kept when at least
    min_job_s long. A job spans its first running reading to its last, so a lone running
    reading (no duration, no energy) is never a job.

    region: per reading, which stretch of time free of explicit jobs it lies in; a
    detected job never merges across an explicit one, nor grows into one. held: the job
    a stretch starting at the first reading continues (it keeps the held start and id).
    """
    if len(stretches) == 0:
        none = np.zeros(0, dtype=np.int64)
        return JobSpans(none, none, [], [], [])
    begin, end = t_ms[stretches.first], t_ms[stretches.last]
    held = held if held is not None and stretches.first[0] == 0 else None
    if held is not None:
        begin[0] = held.start_ms
    merge = begin[1:] - end[:-1] < machine.merge_gap_s * 1000.0
    if region is not None:
        merge &= region[stretches.first[1:]] == region[stretches.last[:-1]]
    new_job = np.flatnonzero(~merge) + 1
    start = begin[np.concatenate([[0], new_job])]
    stop = end[np.concatenate([new_job - 1, [len(end) - 1]])]
    keep = (stop > start) & (stop - start >= machine.min_job_s * 1000.0)
    start, stop = start[keep], stop[keep]
    # A job may still grow while a running reading could still join it: the data ends on
    # it, or less than merge_gap_s after it (and no explicit job came in between).
    t_last = int(t_ms[-1])
    still = (stop == t_last) | (t_last - stop < machine.merge_gap_s * 1000.0)
    if region is not None:
        last_region = region[np.searchsorted(t_ms, stop)]
        still &= last_region == region[-1]
    ids = [""] * len(start)
    if held is not None and len(start) and start[0] == held.start_ms:
        ids[0] = held.job_id
    return JobSpans(start, stop, still.tolist(), ids, [""] * len(start))


def inside(t_ms: I64, jobs: JobSpans) -> tuple[npt.NDArray[np.bool_], I64]:
    """Per reading: inside one of the (sorted, disjoint) jobs [start, end)? And its region:
    the number of jobs begun by then, the same for readings with no job between them.

    The few job edges are looked up among the readings (not each reading among the jobs);
    the answers are then runs between those edges, filled in one pass.
    """
    n = len(t_ms)
    begin = np.searchsorted(t_ms, jobs.start_ms)
    end = np.searchsorted(t_ms, jobs.end_ms)
    # Disjoint and sorted: outside, inside job 0, outside, inside job 1, ... outside.
    edges = np.concatenate([[0], np.column_stack([begin, end]).ravel(), [n]])
    within = np.repeat(np.arange(len(edges) - 1) % 2 == 1, np.diff(edges))
    region = np.repeat(np.arange(len(begin) + 1), np.diff(np.concatenate([[0], begin, [n]])))
    return within, region.astype(np.int64, copy=False)


def combine(given: JobSpans, detected: JobSpans) -> JobSpans:
    """Explicit and detected jobs (disjoint by construction) as one list sorted by start."""
    start = np.concatenate([given.start_ms, detected.start_ms])
    order = np.argsort(start, kind="stable")
    end = np.concatenate([given.end_ms, detected.end_ms])
    still, ids = given.open + detected.open, given.ids + detected.ids
    customers = given.customers + detected.customers
    k = order.tolist()
    return JobSpans(
        start[order],
        end[order],
        [still[i] for i in k],
        [ids[i] for i in k],
        [customers[i] for i in k],
    )


def split_jobs(jobs: JobSpans, cuts: I64) -> JobSpans:
    """Each job cut at the instants (sorted) strictly inside it: a job that was two orders.

    The first piece keeps the job's id, the next ones get '-2', '-3', ...; only the last
    piece can still grow (open).
    """
    if len(jobs) == 0 or len(cuts) == 0:
        return jobs
    k = np.maximum(np.searchsorted(jobs.start_ms, cuts, side="right") - 1, 0)
    cuts = cuts[(cuts > jobs.start_ms[k]) & (cuts < jobs.end_ms[k])]
    start = np.sort(np.concatenate([jobs.start_ms, cuts]))
    end = np.sort(np.concatenate([jobs.end_ms, cuts]))
    parent = np.searchsorted(jobs.start_ms, start, side="right") - 1
    piece = (np.arange(len(start)) - np.searchsorted(parent, parent)).tolist()
    last = (end == jobs.end_ms[parent]).tolist()
    p = parent.tolist()
    return JobSpans(
        start,
        end,
        [jobs.open[j] and is_last for j, is_last in zip(p, last, strict=True)],
        [jobs.ids[j] + (f"-{n + 1}" if n else "") for j, n in zip(p, piece, strict=True)],
        [jobs.customers[j] for j in p],
    )


def explicit_jobs(machine_id: str, jobs: Sequence[ExplicitJob], t_last_ms: int | None) -> JobSpans:
    """The operator's jobs, sorted; overlapping or backwards jobs are an InputError.

    A job that ends after the last reading is open: more energy may still land in it.
    """
    ordered = sorted(jobs, key=lambda j: (j.start_ms, j.end_ms))
    seen: set[str] = set()
    for job in ordered:
        if job.end_ms <= job.start_ms:
            raise InputError(
                f"machine {machine_id}: job {job.job_id!r} ends ({iso_utc(job.end_ms)}) "
                f"at or before it starts ({iso_utc(job.start_ms)})"
            )
        if job.job_id in seen:
            raise InputError(f"machine {machine_id}: job id {job.job_id!r} is given twice")
        seen.add(job.job_id)
    # Sorted by start, any overlap shows up between neighbours.
    for before, after in pairwise(ordered):
        if after.start_ms < before.end_ms:
            raise InputError(
                f"machine {machine_id}: jobs {before.job_id!r} and {after.job_id!r} overlap "
                f"({before.job_id!r} ends {iso_utc(before.end_ms)}, {after.job_id!r} starts "
                f"{iso_utc(after.start_ms)})"
            )
    start = np.array([j.start_ms for j in ordered], dtype=np.int64)
    end = np.array([j.end_ms for j in ordered], dtype=np.int64)
    still = [t_last_ms is None or j.end_ms > t_last_ms for j in ordered]
    return JobSpans(start, end, still, [j.job_id for j in ordered], [j.customer for j in ordered])
