"""What the ledger and the readings become in InfluxDB: lines for the outbox.

Shared by the service (`shopwatt run`, batch by batch) and by the commands that change
history (`shopwatt replay`, `recompute`, `prices import`, `readings drop`), so Grafana shows
the same picture either way:

- `power`: every reading (live: per sensor; replayed: per machine, no sensor tag);
- `machine_state` and `energy` (kWh and cost per minute and tariff band, the spot price
  included), from the machine's readings and the ledger's price slots as the engine's
  live view adds them up (engine/live.py), so a minute split over two batches is written
  whole;
- `job` and `overhead`, from the ledger's rows (money in the ledger's cents).

The arithmetic is the engine's and the reading the ledger's: this module only formats.

Points are identified by series and time, so writing one again overwrites it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from gateway.clock import now_ms
from gateway.config import Machine, ShopConfig, Tariff
from gateway.engine.live import LiveView, advance
from gateway.engine.localtime import local_date
from gateway.engine.model import MachineReadings, PriceSlots
from gateway.ledger.membership import MemberLedger
from gateway.ledger.rows import LedgerRow
from gateway.outputs.drain import open_influx_output
from gateway.outputs.schema import (
    cost_lines,
    energy_lines,
    member_lines,
    power_lines,
    state_lines,
)

log = logging.getLogger("shopwatt.publish")

_ROW_CACHE_MAX = 20_000  # job/overhead lines remembered to skip rewriting unchanged ones
_DRAIN_BUDGET_S = 30.0  # replay/recompute send what they queued for at most this long
HISTORY_CHUNK = 100_000  # replayed readings turned into lines at a time

# The ledger's reader of price slots between two instants (Ledger.price_slots).
PriceReader = Callable[[int, int], Mapping[str, PriceSlots]]


def row_lines(site: str, tariff: Tariff, rows: Iterable[LedgerRow]) -> list[str]:
    """`job` points of finished jobs and `overhead` points (adjustment rows are the
    accountant's business and stay out; open jobs have no end, hence no point yet)."""
    wanted = [r for r in rows if r.kind in ("job", "overhead") and not r.open]
    return cost_lines(site, wanted, tariff.band_names)


def machine_lines(
    cfg: ShopConfig, machine: Machine, r: MachineReadings, view: LiveView, prices: PriceReader
) -> tuple[list[str], LiveView]:
    """`machine_state` and `energy` lines for readings newer than view.last; the next view."""
    if len(r) == 0:
        return [], view
    # The pieces run from the carried reading (if any) to the newest one.
    first = int(r.t_ms[0]) if view.last is None else view.last[0]
    slots = prices(first, int(r.t_ms[-1]))
    step = advance(machine, cfg.tariff, cfg.site.tz, r, view, slots)
    if step is None:
        return [], view
    site, s = cfg.site.id, step.readings
    # The carried reading had its state point in the batch that brought it (if it had
    # power: a reading without power has no state point to skip).
    skip = int(step.fresh == 1 and not math.isnan(s.watts[0]))
    lines = state_lines(site, machine, s.t_ms, s.watts)[skip:]
    lines += energy_lines(site, machine.id, step.minutes, step.band_wh, step.band_cost, cfg.tariff)
    return lines, step.view


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


def history_lines(
    cfg: ShopConfig, readings: Mapping[str, MachineReadings], prices: PriceReader
) -> Iterator[list[str]]:
    """`power`, `machine_state` and `energy` lines of replayed readings, in chunks.

    A year of a machine is a few million lines: chunks of HISTORY_CHUNK readings keep the
    memory of a replay on a Pi flat (the view carries minutes across chunk edges).
    """
    for machine_id, r in readings.items():
        view = LiveView()
        for a in range(0, len(r), HISTORY_CHUNK):
            part = MachineReadings(
                r.t_ms[a : a + HISTORY_CHUNK],
                r.watts[a : a + HISTORY_CHUNK],
                r.wh[a : a + HISTORY_CHUNK],
            )
            lines = power_lines(cfg.site.id, machine_id, "", part.t_ms, part.watts, part.wh)
            shown, view = machine_lines(cfg, cfg.machines[machine_id], part, view, prices)
            yield lines + shown


def member_points(cfg: ShopConfig, t_ms: int) -> list[str]:
    """`member` points: every member's prepaid balance on the local day of t_ms."""
    balances = MemberLedger(cfg).balances(local_date(t_ms, cfg.site.tz))
    return member_lines(cfg.site.id, t_ms, balances)


def queue_ledger_changes(
    cfg: ShopConfig,
    rows: Sequence[LedgerRow],
    readings: Mapping[str, MachineReadings] | None,
    prices: PriceReader,
) -> tuple[int, int]:
    """Put what a command changed in the ledger into the outbox and send it for a while.

    rows: the ledger's rows of the recomputed days (Ledger.rows_of); prices: the ledger's
    price slots for the readings' `energy` cost (Ledger.price_slots).
    Returns (lines queued, lines still waiting); a running `shopwatt run` sends the rest.
    Does nothing (0, 0) without an [influxdb] section.
    """
    if cfg.influxdb is None or not (rows or readings):
        return 0, 0
    outbox, drainer = open_influx_output(cfg)
    try:
        queued = 0
        for lines in history_lines(cfg, readings or {}, prices):
            queued += outbox.put(lines)
        queued += outbox.put(row_lines(cfg.site.id, cfg.tariff, rows))
        queued += outbox.put(member_points(cfg, now_ms()))
        deadline = time.monotonic() + _DRAIN_BUDGET_S
        while outbox.depth and time.monotonic() < deadline and drainer.drain_once() == 0.0:
            pass
        drainer.flush()
        return queued, outbox.depth
    finally:
        drainer.stop()
        outbox.close()
