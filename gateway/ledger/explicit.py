"""jobs.csv in the ledger: the operator's jobs and the local-day spans they govern.

Inside a span, a machine's jobs are exactly the stored ones (no detection); outside, jobs
are detected. A new file replaces every stored job of that machine overlapping its span.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from gateway.engine.localtime import day_start_ms, next_midnight_ms
from gateway.engine.model import ExplicitJob
from gateway.errors import InputError


def span(jobs: Mapping[str, Sequence[ExplicitJob]], tz: ZoneInfo) -> tuple[int, int] | None:
    """Whole local days from the earliest start to the latest end (UTC ms); None: no jobs."""
    listed = [job for machine_jobs in jobs.values() for job in machine_jobs]
    if not listed:
        return None
    first, last = min(j.start_ms for j in listed), max(j.end_ms for j in listed)
    return day_start_ms(first, tz), next_midnight_ms(last - 1, tz)


def store(
    conn: sqlite3.Connection, jobs: Mapping[str, Sequence[ExplicitJob]], source: str, tz: ZoneInfo
) -> tuple[int, int] | None:
    """Store one job list (machine -> jobs), replacing the stored jobs it supersedes.

    Returns the span it governs; `source` names the list (a file, the MQTT input) in errors.
    """
    governed = span(jobs, tz)
    if governed is None:
        return None
    lo, hi = governed
    for machine, listed in jobs.items():
        conn.execute(
            "DELETE FROM explicit_jobs WHERE machine = ? AND start_ms < ? AND end_ms > ?",
            (machine, hi, lo),
        )
        for job in listed:
            clash = conn.execute(
                "SELECT start_ms FROM explicit_jobs WHERE machine = ? AND job_id = ?",
                (machine, job.job_id),
            ).fetchone()
            if clash is not None:
                raise InputError(
                    f"{source}: job_id {job.job_id!r} on {machine} is already stored for "
                    "another time (outside this file's days); job ids must stay unique per machine"
                )
            conn.execute(
                "INSERT INTO explicit_jobs VALUES (?, ?, ?, ?, ?, ?)",
                (machine, job.job_id, job.start_ms, job.end_ms, job.customer, job.parts),
            )
        _add_span(conn, machine, lo, hi)
    return governed


def _add_span(conn: sqlite3.Connection, machine: str, lo: int, hi: int) -> None:
    """Union the span into the machine's stored spans (kept disjoint)."""
    touching = conn.execute(
        "SELECT start_ms, end_ms FROM explicit_spans WHERE machine = ? AND start_ms <= ? "
        "AND end_ms >= ?",
        (machine, hi, lo),
    ).fetchall()
    lo = min([lo, *(s["start_ms"] for s in touching)])
    hi = max([hi, *(s["end_ms"] for s in touching)])
    conn.execute(
        "DELETE FROM explicit_spans WHERE machine = ? AND start_ms <= ? AND end_ms >= ?",
        (machine, hi, lo),
    )
    conn.execute("INSERT INTO explicit_spans VALUES (?, ?, ?)", (machine, lo, hi))


def spans(conn: sqlite3.Connection, machine: str) -> list[tuple[int, int]]:
    """The machine's spans governed by jobs files, sorted."""
    found = conn.execute(
        "SELECT start_ms, end_ms FROM explicit_spans WHERE machine = ? ORDER BY start_ms",
        (machine,),
    )
    return [(s["start_ms"], s["end_ms"]) for s in found]


def jobs_in(conn: sqlite3.Connection, machine: str, lo: int, hi: int) -> list[ExplicitJob]:
    """Stored jobs of a machine overlapping [lo, hi)."""
    found = conn.execute(
        "SELECT job_id, start_ms, end_ms, customer, parts FROM explicit_jobs WHERE machine = ? "
        "AND start_ms < ? AND end_ms > ? ORDER BY start_ms",
        (machine, hi, lo),
    )
    return [
        ExplicitJob(j["job_id"], j["start_ms"], j["end_ms"], j["customer"], j["parts"])
        for j in found
    ]
