"""Job schedules: generated for a shift, written as the gateway's jobs.csv (read by its reader)."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agent.profile import Schedule
from gateway.engine.model import ExplicitJob
from gateway.inputs.csvfile import JOBS_COLUMNS, JOBS_OPTIONAL


def generate_jobs(
    schedule: Schedule,
    shift_ms: tuple[int, int],
    rng: np.random.Generator,
    customers: Sequence[str],
    job_ids: Iterator[str],
) -> list[ExplicitJob]:
    """Fill a shift [start, end) with jobs; whole_shift: one job for the shift, no customer."""
    start_s, end_s = shift_ms[0] // 1000, shift_ms[1] // 1000
    if schedule.whole_shift:
        # The last sample inside the shift is its last running second.
        return [ExplicitJob(next(job_ids), start_s * 1000, (end_s - 1) * 1000)]
    shortest = schedule.between_s[0] + schedule.job_s[0]
    n = int((end_s - start_s) // max(shortest, 1)) + 1
    gaps = np.rint(rng.uniform(*schedule.between_s, n)).astype(np.int64)
    lengths = np.rint(rng.uniform(*schedule.job_s, n)).astype(np.int64)
    ends = start_s + np.cumsum(gaps + lengths)
    starts = ends - lengths
    # Leave at least the shortest idle gap before shutdown; the job that would overrun is cut
    # to fit (the operator picks a shorter program for the rest of the shift).
    limit = end_s - int(schedule.between_s[0])
    keep = starts + int(schedule.job_s[0]) <= limit
    ends = np.minimum(ends, limit)
    who = rng.integers(0, len(customers), n)
    return [
        ExplicitJob(next(job_ids), int(s) * 1000, int(e) * 1000, customers[c])
        for s, e, c in zip(starts[keep], ends[keep], who[keep], strict=True)
    ]


def write_jobs_csv(path: Path, jobs: Mapping[str, Sequence[ExplicitJob]], tz: ZoneInfo) -> int:
    """Write the gateway's jobs.csv (times in local ISO 8601 with offset); returns rows."""

    def local(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")

    rows = [
        (j.job_id, machine, local(j.start_ms), local(j.end_ms), j.customer)
        for machine, machine_jobs in jobs.items()
        for j in machine_jobs
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow((*JOBS_COLUMNS, *JOBS_OPTIONAL))
        writer.writerows(rows)
    return len(rows)
