"""What the ledger and the readings become in InfluxDB: lines for the outbox.

Shared by the service (`shopwatt run`, batch by batch) and by `shopwatt replay` and
`shopwatt recompute` (history), so Grafana shows the same picture either way:

- `power`: every reading (live: per sensor; replayed: per machine, no sensor tag);
- `machine_state` and `energy` (kWh and cost per minute and tariff band), from the
  machine's readings; a `MachineView` carries the last reading and the unfinished minute
  from one batch to the next, so a minute split over two batches is written whole;
- `job` and `overhead`, from the ledger's rows (money as the ledger rounded it).

Points are identified by series and time, so writing one again overwrites it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from gateway.clock import now_ms
from gateway.config import Machine, ShopConfig, Tariff
from gateway.engine.energy import interval_energy
from gateway.engine.localtime import build_calendar, local_date
from gateway.engine.model import F64, I64, MachineReadings
from gateway.engine.split import energy_before
from gateway.ledger import Ledger
from gateway.ledger.membership import MemberLedger
from gateway.ledger.rows import LedgerRow, to_cost_row
from gateway.outputs.drain import open_influx_output
from gateway.outputs.schema import (
    cost_lines,
    energy_lines,
    member_lines,
    power_lines,
    state_lines,
)

log = logging.getLogger("shopwatt.publish")

MINUTE_MS = 60_000
_ROW_CACHE_MAX = 20_000  # job/overhead lines remembered to skip rewriting unchanged ones
_DRAIN_BUDGET_S = 30.0  # replay/recompute send what they queued for at most this long
HISTORY_CHUNK = 100_000  # replayed readings turned into lines at a time


def minute_energy(
    machine: Machine, tariff: Tariff, cfg: ShopConfig, r: MachineReadings
) -> tuple[I64, F64]:
    """Energy between consecutive readings per UTC minute and tariff band.

    Interval energies come from the engine (counters, resets, gaps as in the ledger); an
    interval that spans a minute or band edge is split pro rata, as the engine splits at
    job edges. Returns the minute starts and a (minute, band) matrix in Wh.
    """
    n_bands = len(tariff.band_names)
    if len(r) < 2:
        return np.zeros(0, np.int64), np.zeros((0, n_bands))
    t = r.t_ms
    interval_wh = interval_energy(machine.id, r, machine).wh
    first, last = int(t[0]), int(t[-1])
    tz = cfg.site.tz
    cal = build_calendar(tariff, tz, local_date(first, tz), local_date(last, tz))
    minutes = np.arange((first // MINUTE_MS + 1) * MINUTE_MS, last, MINUTE_MS, dtype=np.int64)
    edges = cal.band_edges[(cal.band_edges > first) & (cal.band_edges < last)]
    cuts = np.unique(np.concatenate([[first], minutes, edges, [last]]))
    piece_wh = np.diff(energy_before(cuts, t, interval_wh))
    starts = cuts[:-1]
    minute_of = starts // MINUTE_MS * MINUTE_MS
    found, row = np.unique(minute_of, return_inverse=True)
    out = np.zeros((len(found), n_bands))
    np.add.at(out, (row, cal.band_index(starts)), piece_wh)
    return found, out


def row_lines(site: str, tariff: Tariff, rows: Iterable[LedgerRow]) -> list[str]:
    """`job` points of finished jobs and `overhead` points (adjustment rows are the
    accountant's business and stay out; open jobs have no end, hence no point yet)."""
    wanted = [
        to_cost_row(r, tariff.band_names)
        for r in rows
        if r.kind in ("job", "overhead") and not r.open
    ]
    return cost_lines(site, wanted, tariff)


@dataclass
class MachineView:
    """What the live picture of one machine carries from one batch to the next."""

    last: tuple[int, float, float] | None = None  # newest reading (t_ms, watts, wh)
    minute: int = -1  # start of the newest minute written to `energy`, which may still grow
    minute_wh: list[float] = field(default_factory=list)  # its Wh per band so far

    def dumps(self) -> str:
        """JSON for the service's state table."""
        return json.dumps([self.last, self.minute, self.minute_wh])

    @classmethod
    def loads(cls, text: str) -> MachineView:
        """The inverse of dumps()."""
        last, minute, minute_wh = json.loads(text)
        return cls(tuple(last) if last else None, minute, minute_wh)


def machine_lines(
    cfg: ShopConfig, machine: Machine, r: MachineReadings, view: MachineView
) -> list[str]:
    """`machine_state` and `energy` lines for readings newer than view.last; updates view.

    r: sorted, unique times. Older readings (late arrivals) are in the ledger but not in
    the live picture: the minutes they belong to were written already.
    """
    site, tariff = cfg.site.id, cfg.tariff
    if view.last is not None:
        newer = r.t_ms > view.last[0]
        t0, w0, wh0 = view.last
        r = MachineReadings(
            np.concatenate([[t0], r.t_ms[newer]]),
            np.concatenate([[w0], r.watts[newer]]),
            np.concatenate([[wh0], r.wh[newer]]),
        )
    if len(r) == 0 or (view.last is not None and len(r) == 1):
        return []
    lines = state_lines(site, machine, r.t_ms, r.watts)
    if view.last is not None:
        lines = lines[1:]  # the newest reading of the previous batch had its point already
    minutes, band_wh = minute_energy(machine, tariff, cfg, r)
    if len(minutes):
        if minutes[0] == view.minute:
            band_wh[0] += view.minute_wh
        lines += energy_lines(site, machine.id, minutes, band_wh, tariff)
        view.minute, view.minute_wh = int(minutes[-1]), band_wh[-1].tolist()
    view.last = (int(r.t_ms[-1]), float(r.watts[-1]), float(r.wh[-1]))
    return lines


class RowLines:
    """`job`/`overhead` lines of recomputed rows, skipping those written unchanged before.

    Every batch recomputes whole local days; without this, every finished job of the
    day would be rewritten every few seconds.
    """

    def __init__(self, site: str, tariff: Tariff) -> None:
        self._site, self._tariff = site, tariff
        self._written: dict[tuple[str, str, str], str] = {}

    def changed(self, rows: Iterable[LedgerRow]) -> list[str]:
        """Lines of the rows whose point differs from the one last written."""
        out = []
        for row in rows:
            for text in row_lines(self._site, self._tariff, [row]):
                key = (row.machine, row.kind, row.job_id or row.day.isoformat())
                if self._written.get(key) != text:
                    self._written[key] = text
                    out.append(text)
        if len(self._written) > _ROW_CACHE_MAX:
            self._written.clear()  # forgetting only costs a rewrite of unchanged points
        return out


def history_lines(cfg: ShopConfig, readings: Mapping[str, MachineReadings]) -> Iterator[list[str]]:
    """`power`, `machine_state` and `energy` lines of replayed readings, in chunks.

    A year of a machine is a few million lines: chunks of HISTORY_CHUNK readings keep the
    memory of a replay on a Pi flat (the view carries minutes across chunk edges).
    """
    for machine_id, r in readings.items():
        view = MachineView()
        for a in range(0, len(r), HISTORY_CHUNK):
            part = MachineReadings(
                r.t_ms[a : a + HISTORY_CHUNK],
                r.watts[a : a + HISTORY_CHUNK],
                r.wh[a : a + HISTORY_CHUNK],
            )
            lines = power_lines(cfg.site.id, machine_id, "", part.t_ms, part.watts, part.wh)
            yield lines + machine_lines(cfg, cfg.machines[machine_id], part, view)


def member_points(cfg: ShopConfig, t_ms: int) -> list[str]:
    """`member` points: every member's prepaid balance on the local day of t_ms."""
    balances = MemberLedger(cfg).balances(local_date(t_ms, cfg.site.tz))
    return member_lines(cfg.site.id, t_ms, balances)


def queue_ledger_changes(
    cfg: ShopConfig,
    recomputed: Mapping[str, tuple[str, str]],
    readings: Mapping[str, MachineReadings] | None = None,
) -> tuple[int, int]:
    """Put what replay/recompute changed into the outbox and send it for a short while.

    recomputed: machine -> first and last local day (as Replayed/recompute report it).
    Returns (lines queued, lines still waiting); a running `shopwatt run` sends the rest.
    Does nothing (0, 0) without an [influxdb] section.
    """
    if cfg.influxdb is None or not (recomputed or readings):
        return 0, 0
    outbox, drainer = open_influx_output(cfg)
    try:
        queued = 0
        for lines in history_lines(cfg, readings or {}):
            queued += outbox.put(lines)
        if recomputed:
            first = min(a for a, _ in recomputed.values())
            last = max(b for _, b in recomputed.values())
            start, end = date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=1)
            rows = Ledger(cfg).select(start, end).rows
            mine = (r for r in rows if r.machine in recomputed)
            queued += outbox.put(row_lines(cfg.site.id, cfg.tariff, mine))
            queued += outbox.put(member_points(cfg, now_ms()))
        deadline = time.monotonic() + _DRAIN_BUDGET_S
        while outbox.depth and time.monotonic() < deadline and drainer.drain_once() == 0.0:
            pass
        drainer.flush()
        return queued, outbox.depth
    finally:
        drainer.stop()
        outbox.close()
