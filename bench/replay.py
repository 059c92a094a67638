"""Benchmark: `shopwatt replay` of a 12-million-row readings.csv vs a plain csv.reader pass.

    .venv/bin/python bench/replay.py [--rows 12096000] [--machines 20] [--repeats 1] [--check]

Generates a seeded readings.csv (every machine every second, jobs, a Wh counter; the
default is a week of 20 machines, about 500 MB), then in the same run: times a bare
`csv.reader` loop over the file (the floor) and the whole replay (parse, check, dedup,
store, engine, rows, audit) into a fresh ledger, and measures the peak RSS of `shopwatt
replay` run as its own process. Prints the ratio replay/floor (goal: at most 2x) beside
the peak RSS (goal: under 300 MB for any file). Exit status 0 unless --check and a goal
is missed. A quick look: --rows 1000000.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from gateway.cli import replay_files
from gateway.config import load_config
from gateway.inputs.csvfile import HAVE_PYARROW

GOAL_RATIO = 2.0
GOAL_RSS_MB = 300
T0 = datetime(2026, 11, 2, tzinfo=UTC)
STEP_S = 1


def write_shop(folder: Path, machines: int) -> Path:
    """A shop.toml with `machines` machines and a ledger in folder/data."""
    parts = [
        '[site]\nid = "bench"\ntimezone = "Europe/Berlin"\n[storage]\npath = "data"\n',
        '[tariff]\nid = "t"\nrate = 0.24\n[[tariff.band]]\nname = "peak"\nrate = 0.38\n'
        'days = ["mon", "tue", "wed", "thu", "fri"]\nstart = "16:00"\nend = "20:00"\n',
    ]
    parts += [
        f'[[machine]]\nid = "m{k:02d}"\noff_below_w = 50\nrun_above_w = 900\nrated_w = 15000\n'
        "[machine.cost]\npurchase = 10000.0\nlife_hours = 10000\n"
        for k in range(machines)
    ]
    path = folder / "shop.toml"
    path.write_text("\n".join(parts))
    return path


def write_readings(path: Path, rows: int, machines: int, seed: int = 7) -> None:
    """Interleaved machines, local times with offsets, jobs as power spells, a counter."""
    rng = np.random.default_rng(seed)
    steps = rows // machines
    # Berlin local time in November (CET, +01:00), as a sensor log would write it.
    stamps = [
        (T0 + timedelta(seconds=STEP_S * k, hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
        for k in range(steps)
    ]
    # Spells of 10-120 minutes at off / idle / running levels, noise on top.
    spell = np.cumsum(rng.integers(60, 720, size=(machines, steps // 60 + 2)), axis=1)
    level = rng.choice([20.0, 400.0, 3000.0, 7000.0], size=spell.shape)
    watts = np.empty((machines, steps))
    for m in range(machines):  # one loop per machine, not per sample
        base = level[m, np.searchsorted(spell[m], np.arange(steps), side="right")]
        watts[m] = np.round(np.maximum(base * (1 + 0.05 * rng.standard_normal(steps)), 0.0), 1)
    wh = np.round(np.cumsum(watts * STEP_S / 3600, axis=1), 3)
    with path.open("w") as fh:
        fh.write("time,machine,watts,wh\n")
        for k in range(steps):
            stamp = stamps[k]
            fh.writelines(f"{stamp},m{m:02d},{watts[m, k]},{wh[m, k]}\n" for m in range(machines))


# Run the CLI and print its peak RSS on the way out. Read inside the child: the kernel's
# ru_maxrss of a child also counts the parent's pages it was forked from (the bench's own).
_WITH_PEAK = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        print(next(line for line in status if line.startswith("VmHWM:")), file=sys.stderr)
atexit.register(peak)
runpy.run_module("gateway", run_name="__main__")
"""


def replay_peak_rss_mb(shop: Path, readings: Path) -> float:
    """Peak RSS (VmHWM) of `shopwatt replay` of a file, run as a user runs it."""
    command = [sys.executable, "-c", _WITH_PEAK, "replay", "--config", str(shop)]
    # run() waits for the child, and kills it if the bench is interrupted meanwhile.
    done = subprocess.run([*command, "--input", str(readings)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"shopwatt replay failed: {done.stderr.strip()}")
    return int(done.stderr.split("VmHWM:")[-1].split()[0]) / 1024  # kB


def main() -> int:
    """Generate, time both, measure the peak RSS, print the ratio and the peak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_096_000)  # 20 machines x 7 days at 1 Hz
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shopwatt-bench-") as tmp:
        folder = Path(tmp)
        readings = folder / "readings.csv"
        write_readings(readings, args.rows, args.machines)
        size_mb = readings.stat().st_size / 1e6

        def plain() -> None:
            with readings.open(newline="") as fh:
                for _ in csv.reader(fh):
                    pass

        runs = iter(range(args.repeats + 1))

        def fresh_shop() -> Path:
            # A fresh ledger every time: the replay writes every reading and every row.
            run = folder / f"run{next(runs)}"
            run.mkdir()
            return write_shop(run, args.machines)

        def replay() -> None:
            replay_files(load_config(fresh_shop()), readings, None)

        # Best of a few runs: the least disturbed by the 2 shared cores.
        floor = min(timeit.repeat(plain, number=1, repeat=args.repeats))
        took = min(timeit.repeat(replay, number=1, repeat=args.repeats))
        peak = replay_peak_rss_mb(fresh_shop(), readings)

    ratio = took / floor
    print(f"readings.csv: {args.rows:,} rows, {args.machines} machines, {size_mb:.1f} MB")
    print(f"csv.reader pass:  {floor:.3f} s  ({args.rows / floor:,.0f} rows/s)")
    print(f"shopwatt replay:  {took:.3f} s  ({args.rows / took:,.0f} rows/s)")
    fast = "pyarrow" if HAVE_PYARROW else "csv module (no pyarrow: the fast-replay extra)"
    ok_ratio, ok_rss = ratio <= GOAL_RATIO, peak < GOAL_RSS_MB
    print(
        f"ratio replay/csv.reader: {ratio:.2f}x (goal <= {GOAL_RATIO:.0f}x, parser: {fast}): "
        f"{'PASS' if ok_ratio else 'FAIL'}; peak RSS of shopwatt replay: {peak:.0f} MB "
        f"(goal < {GOAL_RSS_MB} MB): {'PASS' if ok_rss else 'FAIL'}"
    )
    return 1 if args.check and not (ok_ratio and ok_rss) else 0


if __name__ == "__main__":
    sys.exit(main())
