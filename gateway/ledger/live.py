"""What `shopwatt run` keeps in the ledger beside the readings, committed with each batch.

Its tables (a step of schema.py's migrations) hold the inputs' state as the inputs
serialise it (the ledger stores it, it does not read it), the engine's live view of each
machine, and the stored readings whose rows and live points are not made yet: a restart
after a SIGKILL carries on exactly where the last committed batch ended (docs/gateway.md).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from gateway.engine.live import LiveView

# A live job as the job book stores it: machine, job, start, stop, customer, parts, source,
# and the UID of the card it was started (or stopped) with.
JobRow = tuple[str, str, int | None, int | None, str, int | None, str, str]
_JOBS = """SELECT j.machine, j.job, start_ms, stop_ms, customer, parts, src, COALESCE(card, '')
    FROM live_jobs j LEFT JOIN live_job_cards c ON c.machine = j.machine AND c.job = j.job"""


@dataclass(frozen=True, slots=True)
class LiveState:
    """The service's state, or what changed of it in one batch (saved by upsert)."""

    sensors: list[tuple[str, str]] = field(default_factory=list)  # sensor -> the tracker's JSON
    jobs: list[JobRow] = field(default_factory=list)
    views: dict[str, LiveView] = field(default_factory=dict)  # machine -> its live view
    # Machine -> first and last stored reading whose rows and live points are not made yet;
    # always the whole set: it replaces the stored one.
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)


def save_state(conn: sqlite3.Connection, state: LiveState) -> None:
    """Upsert the state inside the caller's transaction; `pending` replaces what was."""
    # An upsert, not INSERT OR REPLACE: that deletes the row and inserts it at a new rowid,
    # so every batch rewrote the table's pages and its key index (SD-card wear).
    conn.executemany(
        "INSERT INTO sensor_state VALUES (?, ?)"
        " ON CONFLICT (sensor) DO UPDATE SET state = excluded.state",
        state.sensors,
    )
    conn.executemany(
        "INSERT OR REPLACE INTO live_jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [job[:7] for job in state.jobs],
    )
    cards = [(job[0], job[1], job[7]) for job in state.jobs if job[7]]
    conn.executemany("INSERT OR REPLACE INTO live_job_cards VALUES (?, ?, ?)", cards)
    views = [(m, _dumps(v)) for m, v in sorted(state.views.items())]
    conn.executemany(
        "INSERT INTO machine_view VALUES (?, ?)"
        " ON CONFLICT (machine) DO UPDATE SET view = excluded.view",
        views,
    )
    conn.execute("DELETE FROM pending_recompute")
    pending = [(m, a, b) for m, (a, b) in state.pending.items()]
    conn.executemany("INSERT INTO pending_recompute VALUES (?, ?, ?)", pending)


def load_state(conn: sqlite3.Connection) -> LiveState:
    """The state as the last committed batch left it."""
    return LiveState(
        sensors=[(s, t) for s, t in conn.execute("SELECT sensor, state FROM sensor_state")],
        jobs=[(m, j, a, b, c, n, s, u) for m, j, a, b, c, n, s, u in conn.execute(_JOBS)],
        views={m: _loads(v) for m, v in conn.execute("SELECT machine, view FROM machine_view")},
        pending={m: (a, b) for m, a, b in conn.execute("SELECT * FROM pending_recompute")},
    )


def _dumps(view: LiveView) -> str:
    # The JSON of the service's first machine_view table, the minute's cost appended.
    return json.dumps([view.last, view.minute, list(view.minute_wh), list(view.minute_cost)])


def _loads(text: str) -> LiveView:
    last, minute, minute_wh, *cost = json.loads(text)
    # A view saved before `energy` points had the spot price carries no cost: its
    # unfinished minute is written at the cost of the part seen after the upgrade.
    minute_cost = cost[0] if cost else [0.0] * len(minute_wh)
    return LiveView(tuple(last) if last else None, minute, tuple(minute_wh), tuple(minute_cost))
