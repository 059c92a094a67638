"""readings.csv and jobs.csv: parsed and checked vectorised; the first bad row stops the run.

readings.csv: `time,machine,watts[,wh]`, one reading per row, rows in any order. `time` is
ISO 8601 with a UTC offset or `Z` (kept to the millisecond), `watts` the mean power of the
reading, `wh` an optional cumulative energy counter (empty: the reading has none).
jobs.csv: `job_id,machine,start,end[,customer]`, the operator's own job list.

The fast path parses the whole file with pyarrow and checks every rule on whole columns.
Only when something is wrong does a slow exact pass with the csv module walk the rows to
name the FIRST bad one by its line number, column and text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice, pairwise
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from gateway.config import Machine
from gateway.engine.localtime import iso_utc, utc_ms
from gateway.engine.model import F64, I64, ExplicitJob, MachineReadings
from gateway.errors import InputError
from gateway.inputs.protocol import plausible_window

READINGS_COLUMNS = ("time", "machine", "watts")
READINGS_OPTIONAL = ("wh",)
JOBS_COLUMNS = ("job_id", "machine", "start", "end")
JOBS_OPTIONAL = ("customer",)

_BOM = b"\xef\xbb\xbf"  # Excel's "CSV UTF-8" starts with one
_SLOW_BLOCK = 8192  # rows parsed in Python per vectorised rule check on the slow path


@dataclass(frozen=True, slots=True)
class ReadingsFile:
    """A checked readings.csv: per-machine sorted readings and what was dropped on the way."""

    path: Path
    sha256: str
    rows: int  # data rows in the file
    machines: dict[str, MachineReadings]  # config order; unique times per machine
    duplicates: dict[str, int]  # rows repeating an earlier row's (machine, time): counted once
    conflicts: dict[str, int]  # of those, rows whose watts/wh differ from the kept (first) row


@dataclass(frozen=True, slots=True)
class JobsFile:
    """A checked jobs.csv: the operator's jobs per machine, sorted by start."""

    path: Path
    sha256: str
    jobs: dict[str, tuple[ExplicitJob, ...]]
    span_ms: tuple[int, int] | None  # earliest start and latest end; None for an empty file
    lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (machine, job) -> line


def parse_time_ms(text: str) -> int:
    """ISO 8601 with an offset -> UTC milliseconds; ValueError says what is wrong."""
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("not an ISO 8601 time (e.g. 2026-11-03T08:00:00+01:00)") from None
    if ts.tzinfo is None:
        raise ValueError("no UTC offset: add Z or +01:00 (a bare local time is ambiguous)")
    return utc_ms(ts)


def _read(path: Path) -> tuple[bytes, str]:
    """The file's bytes without a BOM, and the sha256 of the file as stored (for the audit)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    data = data.removeprefix(_BOM)
    if b"\r" in data and b"\n" not in data:
        # Classic Mac line ends (bare CR): same lines, same line numbers, once normalised.
        data = data.replace(b"\r", b"\n")
    if data and not data.endswith(b"\n"):
        # pyarrow cannot skip a header that has no line end after it.
        data += b"\n"
    return data, digest


def _header(data: bytes, path: Path, required: Sequence[str], optional: Sequence[str]) -> list[str]:
    """Column names from line 1; unknown, repeated or missing names are an error."""
    end = data.find(b"\n")
    line = data[: end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    names = [n.strip() for n in next(csv.reader([line.rstrip("\r")]), [])]
    expected = ",".join(required) + "".join(f"[,{o}]" for o in optional)
    if not any(names):
        raise InputError(f"{path} line 1: no header; expected {expected}")
    for name in names:
        if name not in (*required, *optional):
            raise InputError(f"{path} line 1: unknown column {name!r}; expected {expected}")
        if names.count(name) > 1:
            raise InputError(f"{path} line 1: column {name!r} appears twice")
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(f"{path} line 1: missing column {missing[0]!r}; expected {expected}")
    return names


def _records(data: bytes, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every data row; empty lines are skipped, as pyarrow does."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    try:
        next(reader, None)
        for fields in reader:
            if fields:
                yield reader.line_num, fields
    except csv.Error as err:
        raise InputError(f"{path} line {reader.line_num + 1}: not valid CSV: {err}") from None


def _fail(path: Path, line: int, column: str, text: str, reason: str) -> NoReturn:
    raise InputError(f"{path} line {line}: {column} = {text!r}: {reason}")


def _outside(window: tuple[int, int]) -> str:
    """Why a time outside the plausible window is refused (docs/protocol.md, Time)."""
    first, last = (iso_utc(t) for t in window)
    return (
        f"outside the plausible window {first} .. {last} (from 2020 to a day after this "
        "computer's clock: a sensor clock that never synced, or a typo)"
    )


# ---------------------------------------------------------------- readings.csv


@dataclass(frozen=True, slots=True)
class _Columns:
    """Parsed readings as arrays, in file order."""

    t_ms: I64
    machine: I64  # index into the config's machines; -1: not in shop.toml
    watts: F64
    wh: F64  # NaN: no counter in this reading

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, float, float]]) -> _Columns:
        """Columns from rows parsed one by one (the slow path)."""
        return cls(
            t_ms=np.array([r[0] for r in rows], dtype=np.int64),
            machine=np.array([r[1] for r in rows], dtype=np.int64),
            watts=np.array([r[2] for r in rows], dtype=np.float64),
            wh=np.array([r[3] for r in rows], dtype=np.float64),
        )


class _Rules:
    """The checks every reading must pass, run on whole columns (both paths use them)."""

    def __init__(self, machines: Mapping[str, Machine], window: tuple[int, int]) -> None:
        self.ids = list(machines)
        self.window = window  # the first and last plausible time
        # One extra slot: index -1 (unknown machine) reads +inf, so no power bound fires there.
        self.rated = np.array([m.rated_w for m in machines.values()] + [math.inf])

    def first_violation(self, cols: _Columns) -> tuple[int, str, str] | None:
        """(row index, column, reason) of the first row that breaks a rule, or None."""
        rated = self.rated[cols.machine]
        checks: list[tuple[str, npt.NDArray[np.bool_]]] = [
            ("machine", cols.machine < 0),
            ("watts", np.isnan(cols.watts)),
            ("watts", cols.watts < 0),
            ("watts", cols.watts > rated),
            ("wh", cols.wh < 0),
            ("wh", np.isinf(cols.wh)),
            ("time", (cols.t_ms < self.window[0]) | (cols.t_ms > self.window[1])),
        ]
        best: tuple[int, int] | None = None  # (row, check number): earliest row, then rule order
        for k, (_, mask) in enumerate(checks):
            if mask.any():
                row = int(np.argmax(mask))
                if best is None or row < best[0]:
                    best = (row, k)
        if best is None:
            return None
        row, k = best
        return row, checks[k][0], self._reason(k, cols, row)

    def _reason(self, check: int, cols: _Columns, row: int) -> str:
        if check == 0:
            return f"not a machine in shop.toml (known: {', '.join(self.ids)})"
        if check == 3:
            machine = int(cols.machine[row])
            return f"above rated_w = {self.rated[machine]:g} W of {self.ids[machine]}"
        return (
            "",
            "missing or not a number",
            "negative power",
            "",
            "negative energy counter",
            "not a finite number",
            _outside(self.window),
        )[check]


def read_readings(
    path: str | Path, machines: Mapping[str, Machine], now_ms: int | None = None
) -> ReadingsFile:
    """Parse and check readings.csv; InputError names the first bad row (line, column, text).

    now_ms: this computer's clock; no reading may be dated more than a day after it.
    """
    path = Path(path)
    data, digest = _read(path)
    names = _header(data, path, READINGS_COLUMNS, READINGS_OPTIONAL)
    rules = _Rules(machines, plausible_window(now_ms))
    try:
        cols = _fast_columns(data, names, rules.ids)
    except pa.ArrowInvalid as err:
        _slow_check(data, names, path, rules, f"cannot read as CSV: {err}")
    violation = rules.first_violation(cols)
    if violation is not None:
        _slow_check(data, names, path, rules, f"row {violation[0] + 1}: {violation[2]}")
    return _group(path, digest, cols, rules.ids)


def _fast_columns(data: bytes, names: list[str], ids: list[str]) -> _Columns:
    """The whole file through pyarrow's multi-threaded CSV reader; raises ArrowInvalid."""
    types = {
        # Parsed at microseconds so that '.123456' is accepted, then floored to ms below.
        "time": pa.timestamp("us", tz="UTC"),
        "machine": pa.dictionary(pa.int32(), pa.string()),
        "watts": pa.float64(),
        "wh": pa.float64(),
    }
    # The reader's threads get a copy in Arrow's own memory, not the Python bytes: a thread
    # of its pool may drop the last reference to its input after read_csv has returned
    # (read-ahead), and releasing a Python object takes the GIL; once the interpreter is
    # exiting (a bad row: exit 2 right away) CPython ends such a thread with pthread_exit,
    # which unwinds through Arrow's C++ frames: "terminate called without an active
    # exception", exit 134. Arrow's own memory is released without Python.
    source = pa.allocate_buffer(len(data))
    memoryview(source).cast("B")[:] = data
    table = pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pacsv.ConvertOptions(
            column_types={n: types[n] for n in names},
            null_values=[""],  # only an empty cell is "nothing"; 'NA' is not a number
            strings_can_be_null=False,
        ),
    ).unify_dictionaries()
    machine = table.column("machine")
    lookup = {name: i for i, name in enumerate(ids)}
    dictionary = machine.chunk(0).dictionary.to_pylist() if machine.num_chunks else []
    to_config = np.array([lookup.get(name, -1) for name in dictionary] + [-1], dtype=np.int64)
    codes = np.concatenate(
        [np.zeros(0, np.int64), *(c.indices.to_numpy(zero_copy_only=False) for c in machine.chunks)]
    )
    n = table.num_rows
    time = table.column("time")
    if time.null_count:  # an empty cell: the slow pass names its line
        raise pa.ArrowInvalid("empty time")
    return _Columns(
        # datetime64[us] viewed as integers: no pyarrow.compute (0.3 s to import).
        t_ms=time.to_numpy().view(np.int64) // 1000,
        machine=to_config[codes],
        watts=table.column("watts").to_numpy().astype(np.float64, copy=False),
        wh=table.column("wh").to_numpy().astype(np.float64, copy=False)
        if "wh" in names
        else np.full(n, np.nan),
    )


def _slow_check(
    data: bytes, names: list[str], path: Path, rules: _Rules, fallback: str
) -> NoReturn:
    """Walk the rows in Python, in blocks checked by the same rules; raise at the first bad row."""
    index = {name: i for i, name in enumerate(names)}
    lookup = {name: i for i, name in enumerate(rules.ids)}
    records = _records(data, path)
    while block := list(islice(records, _SLOW_BLOCK)):
        parsed: list[tuple[int, int, float, float]] = []
        bad: tuple[int, str, str, str] | None = None
        for line, fields in block:
            try:
                parsed.append(_parse_reading(fields, index, lookup))
            except _BadField as err:
                bad = (
                    line,
                    err.column,
                    fields[index[err.column]] if err.column else "",
                    err.reason,
                )
                break
        cols = _Columns.from_rows(parsed)
        violation = rules.first_violation(cols)
        if violation is not None:
            row, column, reason = violation
            line, fields = block[row]
            _fail(path, line, column, fields[index[column]], reason)
        if bad is not None:
            line, column, text, reason = bad
            if not column:
                raise InputError(f"{path} line {line}: {reason}")
            _fail(path, line, column, text, reason)
    raise InputError(f"{path}: {fallback}")


class _BadField(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _number(fields: list[str], index: Mapping[str, int], column: str, empty: float) -> float:
    text = fields[index[column]].strip() if column in index else ""
    if not text:
        return empty
    try:
        return float(text)
    except ValueError:
        raise _BadField(column, "not a number") from None


def _parse_reading(
    fields: list[str], index: Mapping[str, int], lookup: Mapping[str, int]
) -> tuple[int, int, float, float]:
    """One row -> (t_ms, machine index, watts, wh), exactly as the fast path reads it."""
    if len(fields) != len(index):
        raise _BadField("", f"expected {len(index)} fields ({','.join(index)}), got {len(fields)}")
    try:
        t_ms = parse_time_ms(fields[index["time"]])
    except ValueError as err:
        raise _BadField("time", str(err)) from None
    return (
        t_ms,
        lookup.get(fields[index["machine"]], -1),
        _number(fields, index, "watts", math.nan),
        _number(fields, index, "wh", math.nan),
    )


def conflicting(dup: npt.NDArray[np.bool_], watts: F64, wh: F64) -> npt.NDArray[np.bool_]:
    """Of the repeated rows (dup: same key as the row before), those whose values differ
    from the first row of their run, which is the one kept."""
    if not dup.any():  # the common case: skip the work below
        return dup
    kept_at = np.maximum.accumulate(np.where(dup, 0, np.arange(len(dup))))
    same_wh = (wh == wh[kept_at]) | (np.isnan(wh) & np.isnan(wh[kept_at]))
    differs: npt.NDArray[np.bool_] = dup & ((watts != watts[kept_at]) | ~same_wh)
    return differs


def _group(path: Path, digest: str, cols: _Columns, ids: list[str]) -> ReadingsFile:
    """Sort by (machine, time), drop repeated (machine, time) rows keeping the first, split."""
    order = np.lexsort((cols.t_ms, cols.machine))  # stable: the first row in the file wins
    m, t = cols.machine[order], cols.t_ms[order]
    watts, wh = cols.watts[order], cols.wh[order]
    dup = np.zeros(len(m), dtype=bool)
    dup[1:] = (m[1:] == m[:-1]) & (t[1:] == t[:-1])
    conflict = conflicting(dup, watts, wh)
    n_dup = np.bincount(m[dup], minlength=len(ids))
    n_conflict = np.bincount(m[conflict], minlength=len(ids))
    keep = ~dup
    m, t, watts, wh = m[keep], t[keep], watts[keep], wh[keep]
    bounds = np.searchsorted(m, np.arange(len(ids) + 1))
    present = [i for i in range(len(ids)) if bounds[i] < bounds[i + 1]]
    return ReadingsFile(
        path=path,
        sha256=digest,
        rows=len(cols.t_ms),
        machines={
            ids[i]: MachineReadings(
                t[bounds[i] : bounds[i + 1]],
                watts[bounds[i] : bounds[i + 1]],
                wh[bounds[i] : bounds[i + 1]],
            )
            for i in present
        },
        duplicates={ids[i]: int(n_dup[i]) for i in present},
        conflicts={ids[i]: int(n_conflict[i]) for i in present},
    )


# ---------------------------------------------------------------- jobs.csv


def read_jobs(
    path: str | Path, machines: Mapping[str, Machine], now_ms: int | None = None
) -> JobsFile:
    """Parse and check jobs.csv: known machines, times in the plausible window (see
    read_readings), end after start, no overlaps per machine."""
    window = plausible_window(now_ms)
    path = Path(path)
    data, digest = _read(path)
    names = _header(data, path, JOBS_COLUMNS, JOBS_OPTIONAL)
    index = {name: i for i, name in enumerate(names)}
    seen: dict[tuple[str, str], int] = {}  # (machine, job_id) -> line
    rows: dict[str, list[tuple[ExplicitJob, int]]] = {}
    for line, fields in _records(data, path):
        if len(fields) != len(names):
            raise InputError(
                f"{path} line {line}: expected {len(names)} fields ({','.join(names)}), "
                f"got {len(fields)}"
            )
        job_id, machine = fields[index["job_id"]].strip(), fields[index["machine"]]
        if not job_id:
            _fail(path, line, "job_id", job_id, "empty")
        if machine not in machines:
            _fail(
                path,
                line,
                "machine",
                machine,
                f"not a machine in shop.toml ({', '.join(machines)})",
            )
        if (machine, job_id) in seen:
            _fail(path, line, "job_id", job_id, f"repeated (first on line {seen[machine, job_id]})")
        seen[machine, job_id] = line
        start, end = (_job_time(path, line, fields, index, c, window) for c in ("start", "end"))
        if end <= start:
            _fail(path, line, "end", fields[index["end"]], "not after start")
        customer = fields[index["customer"]].strip() if "customer" in index else ""
        rows.setdefault(machine, []).append((ExplicitJob(job_id, start, end, customer), line))
    jobs: dict[str, tuple[ExplicitJob, ...]] = {}
    for machine, listed in rows.items():
        listed.sort(key=lambda jl: jl[0].start_ms)
        for (a, line_a), (b, line_b) in pairwise(listed):
            if b.start_ms < a.end_ms:
                raise InputError(
                    f"{path} line {line_b}: job {b.job_id!r} overlaps job {a.job_id!r} "
                    f"(line {line_a}) on machine {machine}"
                )
        jobs[machine] = tuple(job for job, _ in listed)
    everything = [job for listed in jobs.values() for job in listed]
    span = (
        (min(j.start_ms for j in everything), max(j.end_ms for j in everything))
        if everything
        else None
    )
    return JobsFile(path=path, sha256=digest, jobs=jobs, span_ms=span, lines=seen)


def _job_time(
    path: Path,
    line: int,
    fields: list[str],
    index: Mapping[str, int],
    column: str,
    window: tuple[int, int],
) -> int:
    try:
        t_ms = parse_time_ms(fields[index[column]])
    except ValueError as err:
        _fail(path, line, column, fields[index[column]], str(err))
    if not window[0] <= t_ms <= window[1]:
        _fail(path, line, column, fields[index[column]], _outside(window))
    return t_ms
