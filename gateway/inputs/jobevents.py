"""Job events from the MQTT job topic -> each machine's explicit jobs (docs/protocol.md).

- `(machine, job, event)` is an event's identity: the same event again with the same `t`
  is a duplicate (QoS 1 redelivery); with another `t` it is a `job_conflict`.
- A stop waits for its start (late delivery); a stop at or before its start is a
  `job_conflict`. A job that would overlap another job of the machine is a `job_overlap`:
  the engine needs non-overlapping jobs, and two open jobs on one machine are a forgotten
  stop button, which only a person can sort out.
- An open job (started, no stop yet) goes to the ledger with a provisional end just after
  the machine's newest reading, so its row shows as open with the energy so far; every
  batch moves that end on.
- The book remembers the jobs of the last HORIZON_MS (and every open one); an event older
  than that is `job_too_old`: late corrections of old months go through jobs.csv, where
  the accountant sees them, not through a button press replayed weeks later.

Jobs given to the ledger replace the stored jobs of the local days they cover (the rule of
jobs.csv), so for a machine the book always hands over every job of those days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.engine.localtime import day_start_ms, next_midnight_ms
from gateway.engine.model import ExplicitJob
from gateway.inputs.protocol import JobEvent
from gateway.ledger.live import JobRow  # the service stores the book in the ledger's batch

JOB = "jobs"  # events accepted
DUPLICATE = "job_duplicates"
CONFLICT = "job_conflict"
OVERLAP = "job_overlap"
TOO_OLD = "job_too_old"
HORIZON_MS = 62 * 86_400_000  # two months: every period that can still be open


@dataclass
class LiveJob:
    """What the events of one job said so far."""

    machine: str
    job: str
    start_ms: int | None = None
    stop_ms: int | None = None
    customer: str = ""
    parts: int | None = None  # good parts (from the stop; planned parts from the start)
    src: str = ""
    card: str = ""  # UID of the card that started (else stopped) it: the key to a customer

    def span(self, open_end: int) -> tuple[int, int]:
        """[start, end); an open job ends at open_end (never before just after its start)."""
        assert self.start_ms is not None
        end = self.stop_ms if self.stop_ms is not None else max(open_end, self.start_ms + 1)
        return self.start_ms, end

    def row(self) -> JobRow:
        """The live_jobs row."""
        j = self
        return (j.machine, j.job, j.start_ms, j.stop_ms, j.customer, j.parts, j.src, j.card)


class JobBook:
    """The live jobs of every machine; decides what each event means."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._jobs: dict[str, dict[str, LiveJob]] = {}  # machine -> job id -> job
        self.counts: Counter[str] = Counter()
        self._changed: dict[str, set[str]] = {}  # machine -> jobs changed since take()
        self._dirty: dict[tuple[str, str], JobRow] = {}  # changed since dump()
        self._newest = 0  # the latest event time accepted: the book's clock

    def load(self, rows: Iterable[JobRow]) -> None:
        """Restore the book from live_jobs rows."""
        for machine, job, start, stop, customer, parts, src, card in rows:
            live = LiveJob(machine, job, start, stop, customer, parts, src, card)
            self._jobs.setdefault(machine, {})[job] = live
            self._newest = max(self._newest, start or 0, stop or 0)
        self._forget_old()

    def dump(self) -> list[JobRow]:
        """JobRows of the jobs changed since the last dump (to upsert into live_jobs)."""
        rows = [self._dirty[k] for k in sorted(self._dirty)]
        self._dirty.clear()
        return rows

    def apply(self, machine: str, ev: JobEvent) -> str:
        """Take one event; returns what it was counted as (JOB, DUPLICATE, CONFLICT, ...)."""
        if ev.t < self._newest - HORIZON_MS:
            self.counts[TOO_OLD] += 1
            return TOO_OLD
        jobs = self._jobs.setdefault(machine, {})
        job = jobs.get(ev.job) or LiveJob(machine, ev.job)
        have = job.start_ms if ev.event == "start" else job.stop_ms
        if have is not None:
            verdict = DUPLICATE if have == ev.t else CONFLICT
            self.counts[verdict] += 1
            return verdict
        start = ev.t if ev.event == "start" else job.start_ms
        stop = ev.t if ev.event == "stop" else job.stop_ms
        if start is not None and stop is not None and stop <= start:
            self.counts[CONFLICT] += 1
            return CONFLICT
        if start is not None and self._overlaps(machine, ev.job, start, stop):
            self.counts[OVERLAP] += 1
            return OVERLAP
        if ev.event == "start":
            job.start_ms, job.customer = ev.t, ev.customer or ""
            job.parts = job.parts if job.parts is not None else ev.parts
            job.card = ev.card or job.card
        else:
            job.stop_ms, job.parts = ev.t, ev.parts
            job.customer = job.customer or ev.customer or ""
            job.card = job.card or ev.card
        job.src = job.src or ev.src
        jobs[ev.job] = job
        self._dirty[machine, ev.job] = job.row()
        if job.start_ms is not None:
            self._changed.setdefault(machine, set()).add(ev.job)
        self.counts[JOB] += 1
        if ev.t > self._newest:
            self._newest = ev.t
            self._forget_old()
        return JOB

    def _forget_old(self) -> None:
        """Drop finished jobs that ended before the horizon from memory (the table keeps them).

        Two days of margin: a job handed to the ledger replaces its whole local days, so a
        job on the same day as the oldest event still taken must still be known.
        """
        edge = self._newest - HORIZON_MS - 2 * 86_400_000
        for machine, jobs in self._jobs.items():
            waiting = self._changed.get(machine, set())  # not handed to the ledger yet
            old = [k for k, j in jobs.items() if j.stop_ms is not None and j.stop_ms < edge]
            for k in old:
                if k not in waiting:
                    del jobs[k]

    def _overlaps(self, machine: str, job_id: str, start: int, stop: int | None) -> bool:
        """Would the job clash with another started job of the machine?

        A job without its stop yet runs on: a job that starts while it runs clashes with
        it (a forgotten stop). A start that arrives late, before a job that already
        exists, is fine: that job's start ends it (see _covering).
        """
        for other, j in self._jobs.get(machine, {}).items():
            if other == job_id or j.start_ms is None:
                continue
            j_end = j.stop_ms if j.stop_ms is not None else 1 << 62
            if stop is None:
                clash = j.start_ms <= start < j_end
            else:
                clash = j.start_ms < stop and start < j_end
            if clash:
                return True
        return False

    def take(
        self, newest_ms: Mapping[str, int], with_readings: Iterable[str]
    ) -> dict[str, list[list[ExplicitJob]]]:
        """The jobs to hand to the ledger, per machine: for machines whose jobs changed, and
        for `with_readings` machines with an open job (its provisional end moves on).

        Per machine, groups of jobs: each group is every job on a run of whole local days,
        which the ledger stores in place of what it had for those days. Seeds far apart in
        time make separate groups, so the days in between are left alone.
        newest_ms: per machine, its newest reading (an open job ends just after it).
        """
        seeds = self._changed
        self._changed = {}
        for machine in with_readings:
            for j in self._jobs_of(machine):
                if j.stop_ms is None:
                    seeds.setdefault(machine, set()).add(j.job)
        out = {}
        for machine, jobs in sorted(seeds.items()):
            groups = self._covering(machine, jobs, newest_ms.get(machine, 0) + 1)
            if groups:
                out[machine] = groups
        return out

    def _jobs_of(self, machine: str) -> list[LiveJob]:
        """The machine's started jobs (a stop still waiting for its start is not a job yet)."""
        return [j for j in self._jobs.get(machine, {}).values() if j.start_ms is not None]

    def _covering(self, machine: str, seeds: set[str], open_end: int) -> list[list[ExplicitJob]]:
        """Every job on the local days of the seed jobs, in groups of connected days."""
        jobs = sorted(self._jobs_of(machine), key=lambda j: j.start_ms or 0)
        # An open job ends where the next job starts, at the latest (a late start event).
        nexts = [j.start_ms or 0 for j in jobs[1:]] + [open_end]
        spans = {j.job: j.span(min(open_end, nxt)) for j, nxt in zip(jobs, nexts, strict=True)}
        windows = sorted(self._days(spans, *spans[k]) for k in seeds if k in spans)
        merged: list[tuple[int, int]] = []
        for lo, hi in windows:
            while merged and lo <= merged[-1][1]:
                prev_lo, prev_hi = merged.pop()
                lo, hi = self._days(spans, min(lo, prev_lo), max(hi, prev_hi))
            merged.append((lo, hi))
        return [
            [
                # Parts only from a stop: a start's count is what was planned, not made.
                ExplicitJob(
                    j.job,
                    *spans[j.job],
                    j.customer,
                    j.parts or 0 if j.stop_ms is not None else 0,
                    j.card,
                )
                for j in jobs
                if spans[j.job][0] < hi and spans[j.job][1] > lo
            ]
            for lo, hi in merged
        ]

    def _days(self, spans: Mapping[str, tuple[int, int]], lo: int, hi: int) -> tuple[int, int]:
        """The whole local days around [lo, hi), widened until no job crosses their edges
        (explicit.store replaces the stored jobs of whole days)."""
        while True:
            lo, hi = day_start_ms(lo, self._tz), next_midnight_ms(hi - 1, self._tz)
            inside = [s for s in spans.values() if s[0] < hi and s[1] > lo]
            wider_lo = min([lo, *(s[0] for s in inside)])
            wider_hi = max([hi, *(s[1] for s in inside)])
            if (wider_lo, wider_hi) == (lo, hi):
                return lo, hi
            lo, hi = wider_lo, wider_hi
