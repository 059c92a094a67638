"""`shopwatt readings drop`: the way out of bad data that got into the ledger."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import load_config
from gateway.engine import MachineReadings
from gateway.ledger import Ledger
from tests.ledger.shop import (
    dump,
    ledger_path,
    series,
    shopwatt,
    write_readings,
    write_shop,
)

MILL = series(
    "mill",
    "2025-11-27 00:00",
    "2025-12-02 12:00",
    [
        ("2025-11-28 10:00", "2025-11-28 12:00", 3000.0),
        ("2025-12-01 09:00", "2025-12-01 10:00", 2000.0),
    ],
)
UNSYNCED_MS = 7_000  # 1970-01-01 00:00:07 UTC: an ESP32 whose clock never synced


def _shop(tmp_path: Path) -> Path:
    config = write_shop(tmp_path)
    path = write_readings(tmp_path / "r.csv", MILL.lines())
    assert shopwatt("replay", "--config", config, "--input", path).exit_code == 0
    return config


def _answering(answer: str, *args: str | Path) -> Result:
    """The CLI with `answer` typed at its prompt."""
    return CliRunner().invoke(main, [str(a) for a in args], input=answer, catch_exceptions=False)


def _audit(config: Path, action: str) -> list[dict[str, object]]:
    with closing(sqlite3.connect(ledger_path(config))) as conn:
        found = conn.execute("SELECT detail FROM audit WHERE action = ?", (action,)).fetchall()
    return [json.loads(d) for (d,) in found]


def test_a_1970_reading_that_got_in_is_dropped_and_the_months_close_again(
    tmp_path: Path,
) -> None:
    config = _shop(tmp_path)
    # An older gateway let it in (no plausible window then): now it opens January 1970.
    bad = MachineReadings(np.array([UNSYNCED_MS]), np.array([200.0]), np.array([5.0]))
    Ledger(load_config(config)).ingest({"mill": bad}, source="old gateway")
    blocked = shopwatt("close", "--config", config, "--month", "2025-11", "--yes")
    assert "1970-01 is still open: close months in order" in blocked.stderr
    # Closing 1970-01 instead would freeze the bad reading for good: no drop reaches it then.
    frozen = shopwatt("close", "--config", config, "--month", "1970-01")
    assert frozen.exit_code == 2
    assert "--month = '1970-01': before 2020-01, where no reading can be" in frozen.stderr

    args: list[str | Path] = ["readings", "drop", "--config", config, "--machine", "mill"]
    args += ["--from", "1970-01-01T00:00:00Z", "--to", "2020-01-01T00:00:00Z"]
    kept = dump(config, "rows")
    declined = _answering("n\n", *args)
    assert declined.exit_code == 1
    assert "would drop 1 readings of mill from 1970-01-01 01:00:07+0100" in declined.stdout
    # Declined: nothing was recomputed, and the question must not say it was.
    assert "would recompute mill: 1970-01-01 .. 2025-11-27" in declined.stdout
    assert "recomputed" not in declined.stdout
    assert declined.stderr == "nothing dropped\n"  # not click's bare "Aborted!"
    assert dump(config, "rows") == kept and _audit(config, "drop") == []

    done = _answering("y\n", *args)
    assert done.exit_code == 0, done.output
    assert "dropped 1 readings of mill" in done.stdout
    (entry,) = _audit(config, "drop")
    assert (entry["machine"], entry["readings"], entry["first_ms"]) == ("mill", 1, UNSYNCED_MS)
    # Its counter (5 Wh) against the first real one (1000 Wh): 995 Wh metered "since 1970".
    assert entry["metered_wh"] == 995.0 and len(str(entry["sha256"])) == 64
    assert not [r for r in dump(config, "rows") if str(r[0]).startswith("1970")]
    status = shopwatt("status", "--config", config)
    assert "drop mill: -1 readings, 0.995 kWh (sha256 " in status.stdout
    assert shopwatt("close", "--config", config, "--month", "2025-11", "--yes").exit_code == 0


def test_dropping_readings_recomputes_exactly_as_if_they_had_never_come(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    cut = ("2025-11-28 10:30", "2025-11-28 11:00")  # half an hour of a job: a gap
    result = shopwatt(
        "readings", "drop", "--config", config, "--machine", "mill", "--yes",
        "--from", "2025-11-28T10:30:00+01:00", "--to", "2025-11-28T11:00:00+01:00",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fresh = write_shop(tmp_path / "fresh")
    lines = MILL.lines(hi=cut[0]) + MILL.lines(lo=cut[1])
    path = write_readings(tmp_path / "fresh" / "r.csv", lines)
    assert shopwatt("replay", "--config", fresh, "--input", path).exit_code == 0
    assert dump(config, "rows") == dump(fresh, "rows")
    assert dump(config, "day_stats") == dump(fresh, "day_stats")
    (entry,) = _audit(config, "drop")
    assert (entry["readings"], entry["to"]) == (30, "2025-11-28T10:00:00.000Z")
    # The counters on both sides of the hole still meter the half hour: no kWh is lost.
    assert entry["metered_wh"] == 0.0


def test_readings_of_a_closed_month_are_never_dropped(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    assert shopwatt("close", "--config", config, "--month", "2025-11", "--yes").exit_code == 0
    before = dump(config, "frozen"), dump(config, "rows")
    refused = shopwatt(
        "readings", "drop", "--config", config, "--machine", "mill", "--yes",
        "--from", "2025-11-30T12:00:00+01:00", "--to", "2025-12-01T12:00:00+01:00",
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "reach into 2025-11, a closed month" in refused.stderr
    assert (dump(config, "frozen"), dump(config, "rows")) == before


def test_drop_names_a_bad_machine_or_time(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    base = ["readings", "drop", "--config", config, "--yes"]
    unknown = shopwatt(*base, "--machine", "drill", "--from", "2025-11-28T00:00:00Z", "--to",
                       "2025-11-29T00:00:00Z")  # fmt: skip
    assert unknown.exit_code == 2 and "--machine = 'drill': not a machine" in unknown.stderr
    naive = shopwatt(*base, "--machine", "mill", "--from", "2025-11-28T00:00:00", "--to",
                     "2025-11-29T00:00:00Z")  # fmt: skip
    assert naive.exit_code == 2 and "'2025-11-28T00:00:00': no UTC offset" in naive.stderr


def test_drop_from_the_first_to_the_last_instant_there_is(tmp_path: Path) -> None:
    config = _shop(tmp_path)
    base = ["readings", "drop", "--config", config, "--machine", "mill", "--yes"]
    everything = shopwatt(*base, "--from", "0001-01-01T00:00:00Z", "--to", "9999-12-31T23:59:59Z")
    assert everything.exit_code == 0, everything.output
    assert f"dropped {len(MILL.t_ms):,} readings of mill" in everything.stdout
    beyond = shopwatt(*base, "--from", "2025-11-28T00:00:00Z", "--to", "9999-12-31T23:59:59-12:00")
    assert beyond.exit_code == 2
    assert "'9999-12-31T23:59:59-12:00': after 9999-12-31 in UTC" in beyond.stderr
