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

# A live job as the job book stores it: machine, job, start, stop, customer, parts, source.
JobRow = tuple[str, str, int | None, int | None, str, int | None, str]
_JOBS = "SELECT machine, job, start_ms, stop_ms, customer, parts, src FROM live_jobs"


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
    conn.executemany("INSERT OR REPLACE INTO sensor_state VALUES (?, ?)", state.sensors)
    conn.executemany("INSERT OR REPLACE INTO live_jobs VALUES (?, ?, ?, ?, ?, ?, ?)", state.jobs)
    views = [(m, _dumps(v)) for m, v in sorted(state.views.items())]
    conn.executemany("INSERT OR REPLACE INTO machine_view VALUES (?, ?)", views)
    conn.execute("DELETE FROM pending_recompute")
    pending = [(m, a, b) for m, (a, b) in state.pending.items()]
    conn.executemany("INSERT INTO pending_recompute VALUES (?, ?, ?)", pending)


def load_state(conn: sqlite3.Connection) -> LiveState:
    """The state as the last committed batch left it."""
    return LiveState(
        sensors=[(s, t) for s, t in conn.execute("SELECT sensor, state FROM sensor_state")],
        jobs=[(m, j, a, b, c, n, s) for m, j, a, b, c, n, s in conn.execute(_JOBS)],
        views={m: _loads(v) for m, v in conn.execute("SELECT machine, view FROM machine_view")},
        pending={m: (a, b) for m, a, b in conn.execute("SELECT * FROM pending_recompute")},
    )


def _dumps(view: LiveView) -> str:
    # The JSON of the service's first machine_view table: existing ledgers read unchanged.
    return json.dumps([view.last, view.minute, list(view.minute_wh)])


def _loads(text: str) -> LiveView:
    last, minute, minute_wh = json.loads(text)
    return LiveView(tuple(last) if last else None, minute, tuple(minute_wh))
