"""Who a job was for, said after the fact: assignments and splits (`shopwatt job ...`).

A job's id and span can change when late readings arrive or a recompute runs (a detected
job grows, two merge), so neither is a stable key. An assignment is stored for an
instant inside the job it was made for (its middle) and applies to whichever job covers
that instant after every recompute. A split is the instant where a job becomes two.
When assignments that say different things land in one job (two jobs merged), the newest
applies and `shopwatt status` lists the job; one that no job covers any more (its readings
were dropped) is listed too. Nothing is dropped silently.
"""

from __future__ import annotations

import bisect
import sqlite3
from dataclasses import dataclass, replace

import numpy as np

from gateway.engine.model import I64
from gateway.ledger.rows import LedgerRow


@dataclass(frozen=True, slots=True)
class Assignment:
    """Customer, order and part counts for the job that covers `at_ms` on a machine."""

    machine: str
    at_ms: int
    job_id: str  # the job's id when the assignment was made (for messages)
    customer: str
    order: str = ""
    parts: int = 0
    scrap: int = 0
    made_at: str = ""
    made_by: str = ""
    id: int = 0  # storage order: the newest wins

    def says(self) -> tuple[str, str, int, int]:
        """What it sets on a job (two assignments that say the same do not clash)."""
        return self.customer, self.order, self.parts, self.scrap


def _from_sql(v: sqlite3.Row) -> Assignment:
    return Assignment(
        v["machine"],
        v["at_ms"],
        v["job_id"],
        v["customer"],
        v["order_id"],
        v["parts"],
        v["scrap"],
        v["made_at"],
        v["made_by"],
        v["id"],
    )


def within(conn: sqlite3.Connection, machine: str, lo: int, hi: int) -> list[Assignment]:
    """The machine's assignments with lo <= at_ms < hi, oldest first."""
    found = conn.execute(
        "SELECT * FROM assignments WHERE machine = ? AND at_ms >= ? AND at_ms < ? ORDER BY id",
        (machine, lo, hi),
    )
    return [_from_sql(v) for v in found]


def store(conn: sqlite3.Connection, job: LedgerRow, a: Assignment) -> int:
    """Store an assignment for the job; it replaces the earlier ones inside the job's span.
    Returns how many it replaced."""
    replaced = conn.execute(
        "DELETE FROM assignments WHERE machine = ? AND at_ms >= ? AND at_ms < ?",
        (job.machine, job.start_ms, job.end_ms),
    ).rowcount
    _insert(conn, a)
    return replaced


def note(conn: sqlite3.Connection, a: Assignment) -> Assignment:
    """Store what the operator said at the machine for the job that covers `a.at_ms` (its
    start): fields left empty (order "", parts and scrap 0) keep what an earlier note for
    that instant said. Returns the assignment as stored."""
    was = conn.execute(
        "SELECT * FROM assignments WHERE machine = ? AND at_ms = ? ORDER BY id DESC LIMIT 1",
        (a.machine, a.at_ms),
    ).fetchone()
    if was is not None:
        old = _from_sql(was)
        a = replace(
            a,
            order=a.order or old.order,
            parts=a.parts or old.parts,
            scrap=a.scrap or old.scrap,
        )
    conn.execute("DELETE FROM assignments WHERE machine = ? AND at_ms = ?", (a.machine, a.at_ms))
    _insert(conn, a)
    return a


def _insert(conn: sqlite3.Connection, a: Assignment) -> None:
    conn.execute(
        "INSERT INTO assignments (machine, at_ms, job_id, customer, order_id, parts, scrap, "
        "made_at, made_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a.machine, a.at_ms, a.job_id, a.customer, a.order, a.parts, a.scrap, a.made_at, a.made_by),
    )


def cuts(conn: sqlite3.Connection, machine: str, lo: int, hi: int) -> I64:
    """The machine's split instants with lo <= t < hi, sorted."""
    found = conn.execute(
        "SELECT at_ms FROM splits WHERE machine = ? AND at_ms >= ? AND at_ms < ? ORDER BY at_ms",
        (machine, lo, hi),
    )
    return np.array([v["at_ms"] for v in found], dtype=np.int64)


# A job's span and id: (start_ms, end_ms, job_id), sorted by start.
Span = tuple[int, int, str]


def covering(spans: list[Span], t_ms: int) -> Span | None:
    """The job (one machine's, by start) whose span [start, end) holds t_ms."""
    k = bisect.bisect_right([s[0] for s in spans], t_ms) - 1
    return spans[k] if k >= 0 and t_ms < spans[k][1] else None


def apply(rows: list[LedgerRow], assignments: list[Assignment]) -> list[LedgerRow]:
    """Rows (one machine's, by start) with each job taking the newest assignment inside it."""
    spans = [(r.start_ms, r.end_ms, r.job_id) for r in rows if r.kind == "job"]
    newest: dict[str, Assignment] = {}
    for a in assignments:  # oldest first: a later one overwrites
        job = covering(spans, a.at_ms)
        if job is not None:
            newest[job[2]] = a
    out = []
    for row in rows:
        said = newest.get(row.job_id) if row.kind == "job" else None
        if said is not None:
            amounts = replace(row.amounts, parts=said.parts, scrap=said.scrap)
            row = replace(row, customer=said.customer, order=said.order, amounts=amounts)
        out.append(row)
    return out


def unsettled(conn: sqlite3.Connection) -> list[str]:
    """Assignments a person must look at: several that disagree in one job, or none of the
    jobs covering their instant any more. One line each, for `shopwatt status`."""
    lines = []
    for machine in [m["machine"] for m in conn.execute("SELECT DISTINCT machine FROM assignments")]:
        spans = [
            (r["start_ms"], r["end_ms"], r["job_id"])
            for r in conn.execute(
                "SELECT start_ms, end_ms, job_id FROM rows WHERE machine = ? AND kind = 'job' "
                "ORDER BY start_ms",
                (machine,),
            )
        ]
        per_job: dict[str, list[Assignment]] = {}
        for a in within(conn, machine, -(2**62), 2**62):
            job = covering(spans, a.at_ms)
            if job is None:
                lines.append(
                    f"{machine}: the assignment made for job {a.job_id} ({a.customer}) by "
                    f"{a.made_by} at {a.made_at} covers no job any more"
                )
            else:
                per_job.setdefault(job[2], []).append(a)
        for job_id, found in per_job.items():
            if len({a.says() for a in found}) > 1:
                said = "; ".join(f"{a.job_id}: {a.customer} {a.order}".rstrip() for a in found)
                lines.append(
                    f"{machine}: job {job_id} now covers assignments that differ ({said}); "
                    "the newest applies: assign it again to settle it"
                )
    return lines
