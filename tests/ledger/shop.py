"""A small test shop: shop.toml, synthetic readings, the CLI in-process, ledger dumps."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import Metered, ShopConfig
from gateway.engine.localtime import FIRST_MS, LAST_MS
from gateway.engine.model import MachineReadings, ReadingRows
from gateway.inputs.csvfile import HAVE_PYARROW, ReadingsCsv
from gateway.ledger import Ledger, Replayed
from gateway.ledger.rows import BILLING_COLUMNS

TZ = ZoneInfo("Europe/Berlin")

CONFIG = """\
[site]
id = "test-shop"
timezone = "Europe/Berlin"
currency = "EUR"

[storage]
path = "data"

[tariff]
id = "tou"
rate = {rate}
[[tariff.band]]
name = "peak"
rate = 0.40
days = ["mon", "tue", "wed", "thu", "fri"]
start = "16:00"
end = "20:00"

[[machine]]
id = "mill"
off_below_w = 50
run_above_w = 1000
min_job_s = 60
merge_gap_s = 300
max_gap_s = 120
rated_w = 5000
[machine.cost]
purchase = 1000.0
life_hours = 1000
maintenance_per_run_hour = 0.5

[[machine]]
id = "lathe"
off_below_w = 50
run_above_w = 800
rated_w = 4000
[machine.cost]
purchase = 2000.0
life_hours = 1000
depreciation_basis = "job_hours"
"""


def write_shop(folder: Path, rate: float = 0.20) -> Path:
    """shop.toml (ledger in folder/data) with a standard rate and a weekday peak band."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shop.toml"
    path.write_text(CONFIG.format(rate=rate), encoding="utf-8")
    return path


def local_ms(text: str) -> int:
    """'2026-11-03 08:00' in Berlin -> UTC ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp() * 1000)


@dataclass(frozen=True)
class Series:
    """One machine's readings: every step_s, idle power, running power inside jobs."""

    machine: str
    t_ms: np.ndarray
    watts: np.ndarray
    wh: np.ndarray  # the exact trapezoid integral of watts: a counter

    def lines(
        self, lo: str | None = None, hi: str | None = None, counter: bool = True
    ) -> list[str]:
        """CSV lines (no header) of the readings with lo <= local time < hi."""
        a = local_ms(lo) if lo else -(2**62)
        b = local_ms(hi) if hi else 2**62
        keep = (self.t_ms >= a) & (self.t_ms < b)
        out = []
        for t, w, e in zip(self.t_ms[keep], self.watts[keep], self.wh[keep], strict=True):
            stamp = datetime.fromtimestamp(t / 1000, TZ).isoformat()
            out.append(f"{stamp},{self.machine},{w:.1f}" + (f",{e:.4f}" if counter else ""))
        return out

    def wh_between(self, lo: str, hi: str) -> float:
        """Metered energy between the first and last reading of [lo, hi)."""
        keep = (self.t_ms >= local_ms(lo)) & (self.t_ms < local_ms(hi))
        return float(self.wh[keep][-1] - self.wh[keep][0])


def series(
    machine: str,
    first: str,
    last: str,
    jobs: Sequence[tuple[str, str, float]],
    idle_w: float = 200.0,
    step_s: int = 60,
) -> Series:
    """Readings from `first` to `last` (local) with running power inside each job."""
    t = np.arange(local_ms(first), local_ms(last) + 1, step_s * 1000, dtype=np.int64)
    watts = np.full(len(t), idle_w)
    for start, end, w in jobs:
        watts[(t >= local_ms(start)) & (t <= local_ms(end))] = w
    # A little deterministic ripple so that no two readings are alike.
    watts = watts + (np.arange(len(t)) % 7) * 1.5
    dt_h = np.diff(t) / 3_600_000
    wh = np.concatenate([[1000.0], 1000.0 + np.cumsum((watts[1:] + watts[:-1]) / 2 * dt_h)])
    return Series(machine, t, np.round(watts, 1), np.round(wh, 4))


def write_readings(path: Path, lines: Sequence[str], counter: bool = True) -> Path:
    """readings.csv with header."""
    header = "time,machine,watts,wh" if counter else "time,machine,watts"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def csv_rows(path: Path, machines: Mapping[str, Metered], fast: bool = HAVE_PYARROW) -> ReadingRows:
    """Every row of a readings.csv as replay parses it, in file order (InputError: the
    first bad row)."""
    batches = list(ReadingsCsv(path, machines, fast=fast).batches())
    arrays = {
        name: np.concatenate([np.zeros(0, dtype), *(getattr(b, name) for b in batches)])
        for name, dtype in (
            ("machine", np.int64),
            ("t_ms", np.int64),
            ("watts", float),
            ("wh", float),
        )
    }
    return ReadingRows(**arrays)


def stored_readings(cfg: ShopConfig) -> dict[str, MachineReadings]:
    """Every machine's readings as the ledger holds them (machines without any left out)."""
    ledger = Ledger(cfg)
    held = {m: ledger.readings(m, FIRST_MS, LAST_MS) for m in cfg.machines}
    return {m: r for m, r in held.items() if len(r)}


def replay_readings(cfg: ShopConfig, path: Path) -> tuple[Replayed, dict[str, MachineReadings]]:
    """A readings.csv replayed into the shop's ledger: what replay counted, what it stored."""
    replayed = Ledger(cfg).replay(ReadingsCsv(path, cfg.metered))
    return replayed, stored_readings(cfg)


def replay_case(folder: Path, into: Path) -> Path:
    """A golden case (tests/cases/...) copied to into/case and replayed; its shop.toml."""
    case = into / "case"
    shutil.copytree(folder, case)
    config = case / "shop.toml"
    ok("replay", "--config", config, "--input", case / "readings.csv", "--jobs",
       case / "jobs.csv", "--create-customers")  # fmt: skip
    return config


def shopwatt(*args: str | Path) -> Result:
    """Run the CLI in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(*args: str | Path) -> str:
    """Run the CLI, which must succeed; its stdout."""
    result = shopwatt(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def export_rows(config: Path, first: str, end: str) -> list[dict[str, str]]:
    """`shopwatt export` of the local dates [first, end) as CSV dicts."""
    text = ok("export", "--config", config, "--from", first, "--to", end)
    return list(csv.DictReader(io.StringIO(text)))


def ledger_path(config: Path) -> Path:
    """Where write_shop's ledger lives."""
    return config.parent / "data" / "ledger.sqlite"


def sha256(path: Path) -> str:
    """Hash of a file (the ledger before and after a failed run)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rounded(value: object, digits: int) -> object:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, str) and value.startswith("{"):  # band_wh as JSON
        return tuple((k, round(v, digits)) for k, v in json.loads(value).items())
    return value


def dump(config: Path, table: str, digits: int = 6) -> list[tuple[object, ...]]:
    """A table's rows, sorted, floats rounded (partial and full runs add floats apart)."""
    conn = sqlite3.connect(ledger_path(config))
    try:
        found = conn.execute(f"SELECT * FROM {table}").fetchall()
    finally:
        conn.close()
    return sorted(tuple(_rounded(v, digits) for v in row) for row in found)


def days_after(day: str, n: int) -> str:
    """'2026-11-03' + n days."""
    return (datetime.fromisoformat(day) + timedelta(days=n)).date().isoformat()


def drop_billing_step(conn: sqlite3.Connection) -> None:
    """Undo the billing migration step (schema.py), to make a ledger of an earlier version."""
    for table in ("customers", "assignments", "splits"):
        conn.execute(f"DROP TABLE {table}")
    for table in ("rows", "adjustments", "frozen"):
        for column in BILLING_COLUMNS:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("ALTER TABLE explicit_jobs DROP COLUMN parts")
    conn.execute("ALTER TABLE frozen_charges DROP COLUMN order_id")


def before_day_blocks(path: Path) -> None:
    """The ledger as shopwatt before blocks of BLOCK_MAX readings left it (schema 14): a
    day's row in chunks keyed by (machine, day) alone."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP INDEX chunks_by_key")
        conn.execute("CREATE UNIQUE INDEX chunks_by_key ON chunks (machine, day)")
        conn.execute("PRAGMA user_version = 14")
        conn.commit()
