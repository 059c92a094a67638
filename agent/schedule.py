"""Job schedules: read from a CSV, generated for a shift, written as the gateway's jobs.csv."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agent.profile import Schedule
from gateway.engine.model import ExplicitJob
from gateway.errors import InputError

COLUMNS = ("job_id", "machine", "start", "end", "customer")


def _instant_ms(text: str, where: str) -> int:
    """ISO 8601 with an offset or 'Z' -> UTC ms, on whole seconds (the simulation's grid)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where} = {text!r}: not an ISO 8601 time") from None
    if moment.utcoffset() is None:
        raise InputError(f"{where} = {text!r}: needs an offset or 'Z' (local time is ambiguous)")
    return round(moment.timestamp()) * 1000


def read_schedule(path: Path, machines: Iterable[str]) -> dict[str, list[ExplicitJob]]:
    """Read `job_id,machine,start,end[,customer]`; raises InputError naming file and line."""
    known = set(machines)
    jobs: dict[str, list[ExplicitJob]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS[:4] if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
            for row in reader:
                where = f"{path}: line {reader.line_num}"
                machine = row["machine"] or ""
                if machine not in known:
                    raise InputError(f"{where}: machine = {machine!r}: not in the shop")
                job = ExplicitJob(
                    job_id=row["job_id"] or "",
                    start_ms=_instant_ms(row["start"] or "", f"{where}: start"),
                    end_ms=_instant_ms(row["end"] or "", f"{where}: end"),
                    customer=row.get("customer") or "",
                )
                if not job.job_id:
                    raise InputError(f"{where}: job_id is empty")
                if job.end_ms <= job.start_ms:
                    raise InputError(f"{where}: end = {row['end']!r}: not after start")
                jobs.setdefault(machine, []).append(job)
    except FileNotFoundError:
        raise InputError(f"{path}: no such schedule file") from None
    return jobs


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
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return len(rows)
