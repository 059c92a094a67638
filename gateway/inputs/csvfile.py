"""readings.csv and jobs.csv: read in blocks, checked vectorised; the first bad row stops the run.

readings.csv: `time,machine,watts[,wh]`, one reading per row, rows in any order. `time` is
ISO 8601 with a UTC offset or `Z` (kept to the millisecond), `watts` the mean power of the
reading, `wh` an optional cumulative energy counter (empty: the reading has none; `nan` is
refused).
jobs.csv: `job_id,machine,start,end[,customer]`, the operator's own job list.

A file is read in blocks of whole lines (a few MB), so a file of any length needs the
memory of one block. The csv module is the reference parser; pyarrow (the `fast-replay`
extra), when installed, parses a block several times faster and is trusted only when it
reads the whole block and every row passes the rules. Any other block goes through the
csv module, which then names the first bad row by line, column and text; both parsers
therefore accept the same files with the same values and report the same errors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice, pairwise
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from gateway.config import Machine, Metered
from gateway.engine.localtime import iso_utc, utc_ms
from gateway.engine.model import ExplicitJob, ReadingRows
from gateway.errors import InputError
from gateway.inputs.protocol import plausible_window

try:  # the `fast-replay` extra; the csv module does the same job without it
    import pyarrow as pa
    import pyarrow.csv as pacsv
except ImportError:  # pragma: no cover - exercised on installs without the extra
    pa = None

READINGS_COLUMNS = ("time", "machine", "watts")
READINGS_OPTIONAL = ("wh",)
JOBS_COLUMNS = ("job_id", "machine", "start", "end")
JOBS_OPTIONAL = ("customer",)
HAVE_PYARROW = pa is not None

_BOM = b"\xef\xbb\xbf"  # Excel's "CSV UTF-8" starts with one
_AHEAD = 2  # blocks parsed ahead, each on its own thread
_BLOCK = 2 << 20  # bytes read at a time: ~45k readings, ~20 MB while parsed and staged


@dataclass(frozen=True, slots=True)
class JobsFile:
    """A checked jobs.csv: the operator's jobs per machine, sorted by start."""

    path: Path
    sha256: str
    jobs: dict[str, tuple[ExplicitJob, ...]]
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


def _line_ends(block: bytes) -> int:
    """Lines in a block as the csv module counts them (LF, CRLF and a lone CR each end one)."""
    if b"\r" not in block:  # the common case; numpy counts ~4x faster than bytes.count
        return int(np.count_nonzero(np.frombuffer(block, np.uint8) == ord("\n")))
    return block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")


class _CsvFile:
    """A CSV file as its header and blocks of whole lines, hashed as it is read."""

    def __init__(self, path: Path, required: Sequence[str], optional: Sequence[str]) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._blocks = self._read()
        first = next(self._blocks, b"")
        end = first.find(b"\n") + 1
        self.names = _header(first[:end], path, required, optional)
        self._first = first[end:]

    @property
    def sha256(self) -> str:
        """sha256 of the file as stored (for the audit); complete once every block was read."""
        return self._digest.hexdigest()

    def _read(self) -> Iterator[bytes]:
        try:
            with self.path.open("rb") as fh:
                rest, first, mac = b"", True, False
                while data := fh.read(_BLOCK):
                    self._digest.update(data)
                    if first:
                        first = False
                        data = data.removeprefix(_BOM)
                        # Classic Mac line ends (bare CR): same lines, same line numbers.
                        mac = b"\r" in data and b"\n" not in data
                    data = rest + (data.replace(b"\r", b"\n") if mac else data)
                    cut = data.rfind(b"\n") + 1
                    rest = data[cut:]
                    if cut:
                        yield data[:cut]
                if rest:
                    yield rest + b"\n"  # a last line without a line end
        except OSError as err:
            raise InputError(f"{self.path}: cannot read: {err.strerror}") from None

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """(lines before the block, block) of the data lines; each block ends at a line end."""
        line = 1  # the header
        for block in chain([self._first] if self._first else [], self._blocks):
            yield line, block
            line += _line_ends(block)

    def records(self, line: int, block: bytes) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of a block's rows; empty lines are skipped, as pyarrow does."""
        reader = csv.reader(io.StringIO(block.decode("utf-8", errors="replace"), newline=""))
        try:
            for fields in reader:
                if fields:
                    yield line + reader.line_num, fields
        except csv.Error as err:
            raise InputError(
                f"{self.path} line {line + reader.line_num + 1}: not valid CSV: {err}"
            ) from None


def _header(line: bytes, path: Path, required: Sequence[str], optional: Sequence[str]) -> list[str]:
    """Column names from line 1; unknown, repeated or missing names are an error."""
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    names = [n.strip() for n in next(csv.reader([text]), [])]
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


class _Rules:
    """The checks every reading must pass, run on whole columns (both parsers use them)."""

    def __init__(self, machines: Mapping[str, Metered], window: tuple[int, int]) -> None:
        self.ids = list(machines)
        self.window = window  # the first and last plausible time
        # One extra slot: index -1 (unknown machine) reads +inf, so no power bound fires there.
        self.rated = np.array([m.rated_w for m in machines.values()] + [math.inf])

    def first_violation(self, rows: ReadingRows) -> tuple[int, str, str] | None:
        """(row index, column, reason) of the first row that breaks a rule, or None."""
        rated = self.rated[rows.machine]
        checks: list[tuple[str, npt.NDArray[np.bool_]]] = [
            ("machine", rows.machine < 0),
            ("watts", np.isnan(rows.watts)),
            ("watts", rows.watts < 0),
            ("watts", rows.watts > rated),
            ("wh", rows.wh < 0),
            ("time", (rows.t_ms < self.window[0]) | (rows.t_ms > self.window[1])),
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
        return row, checks[k][0], self._reason(k, rows, row)

    def _reason(self, check: int, rows: ReadingRows, row: int) -> str:
        if check == 0:
            return f"not a machine or site meter in shop.toml (known: {', '.join(self.ids)})"
        if check == 3:
            machine = int(rows.machine[row])
            return f"above rated_w = {self.rated[machine]:g} W of {self.ids[machine]}"
        return (
            "",
            "missing or not a number",
            "negative power",
            "",
            "negative energy counter",
            _outside(self.window),
        )[check]


class ReadingsCsv:
    """readings.csv as checked batches of rows in file order; memory: one block at a time.

    now_ms: this computer's clock; no reading may be dated more than a day after it.
    """

    def __init__(
        self,
        path: str | Path,
        machines: Mapping[str, Metered],
        now_ms: int | None = None,
        *,
        fast: bool = HAVE_PYARROW,
    ) -> None:
        self._file = _CsvFile(Path(path), READINGS_COLUMNS, READINGS_OPTIONAL)
        self.path = self._file.path
        self._rules = _Rules(machines, plausible_window(now_ms))
        self._fast = fast
        self._index = {name: i for i, name in enumerate(self._file.names)}
        self._lookup = {name: i for i, name in enumerate(self._rules.ids)}

    @property
    def sha256(self) -> str:
        """sha256 of the file as stored; complete once batches() has been read to the end."""
        return self._file.sha256

    def batches(self) -> Iterator[ReadingRows]:
        """Every data row, block by block; InputError names the first bad row."""
        if not self._fast:
            for line, block in self._file.blocks():
                yield self._exact(line, block)
            return
        # pyarrow lets go of the GIL: the next block is parsed on the other core while the
        # caller stores this one (on a Python thread, not pyarrow's pool: see _pyarrow).
        with ThreadPoolExecutor(max_workers=_AHEAD) as pool:
            parsing = ((n, b, pool.submit(self._pyarrow, b)) for n, b in self._file.blocks())
            ahead = deque(islice(parsing, _AHEAD))
            while ahead:
                ahead.extend(islice(parsing, 1))  # its parse starts before this one is handed on
                yield self._checked(*ahead.popleft())

    def _checked(self, line: int, block: bytes, parsed: Future[ReadingRows | None]) -> ReadingRows:
        """pyarrow's rows when it read the whole block and every row passes the rules."""
        rows = parsed.result()
        if rows is None or self._rules.first_violation(rows) is not None:
            rows = self._exact(line, block)  # raises at the first bad row
        return rows

    def _pyarrow(self, block: bytes) -> ReadingRows | None:
        """One block through pyarrow's CSV reader; None when it cannot read all of it."""
        names = self._file.names
        types = {
            # Parsed at microseconds so that '.123456' is accepted, then floored to ms below.
            "time": pa.timestamp("us", tz="UTC"),
            "machine": pa.dictionary(pa.int32(), pa.string()),
            "watts": pa.float64(),
            "wh": pa.float64(),
        }
        # Arrow's own copy of the block, not the Python bytes: a reader thread may drop the
        # last reference to its input after read_csv has returned, and releasing a Python
        # object takes the GIL; at interpreter exit (a bad row: exit 2 at once) CPython ends
        # such a thread with pthread_exit through Arrow's C++ frames: "terminate called
        # without an active exception", exit 134. Arrow's memory is released without Python.
        source = pa.allocate_buffer(len(block))
        memoryview(source).cast("B")[:] = block
        try:
            table = pacsv.read_csv(
                source,
                # pyarrow's own thread pool is never started (nor left running at exit).
                read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: types[n] for n in names},
                    null_values=[""],  # only an empty cell is "nothing"; 'NA' is not a number
                    strings_can_be_null=False,
                ),
            ).unify_dictionaries()
        except pa.ArrowInvalid:
            return None
        time = table.column("time")
        if time.null_count:  # an empty cell: the exact pass names its line
            return None
        wh = np.full(table.num_rows, np.nan)
        if "wh" in names:
            counter = table.column("wh")
            wh = counter.to_numpy().astype(np.float64, copy=False)
            # Only an empty cell (null) is "no counter"; a 'nan' or 'inf' text: the exact
            # pass names its line.
            if np.count_nonzero(~np.isfinite(wh)) != counter.null_count:
                return None
        machine = table.column("machine")
        dictionary = machine.chunk(0).dictionary.to_pylist() if machine.num_chunks else []
        to_config = np.array([self._lookup.get(n, -1) for n in dictionary] + [-1], np.int64)
        indices = (c.indices.to_numpy(zero_copy_only=False) for c in machine.chunks)
        codes = np.concatenate([np.zeros(0, np.int64), *indices])
        return ReadingRows(
            machine=to_config[codes],
            # datetime64[us] viewed as integers: no pyarrow.compute (0.3 s to import).
            t_ms=time.to_numpy().view(np.int64) // 1000,
            watts=table.column("watts").to_numpy().astype(np.float64, copy=False),
            wh=wh,
        )

    def _exact(self, line: int, block: bytes) -> ReadingRows:
        """One block through the csv module: its rows, or InputError at its first bad row."""
        parsed: list[tuple[int, int, float, float]] = []
        bad: tuple[int, list[str], _BadField] | None = None
        last: tuple[str, int] = ("", 0)  # the time text repeats for every machine of a second
        for number, fields in self._file.records(line, block):
            try:
                parsed.append(_parse_reading(fields, self._index, self._lookup, last))
            except _BadField as err:
                bad = (number, fields, err)
                break
            last = (fields[self._index["time"]], parsed[-1][0])
        # One float64 table: exact for these ints (ms since the epoch stay far below 2**53).
        table = np.array(parsed, dtype=np.float64).reshape(-1, 4)
        rows = ReadingRows(
            machine=table[:, 1].astype(np.int64),
            t_ms=table[:, 0].astype(np.int64),
            watts=table[:, 2].copy(),
            wh=table[:, 3].copy(),
        )
        violation = self._rules.first_violation(rows)
        if violation is not None:  # before the unreadable row, if any: the first bad row wins
            k, column, reason = violation
            number, fields = next(islice(self._file.records(line, block), k, None))
            _fail(self.path, number, column, fields[self._index[column]], reason)
        if bad is not None:
            number, fields, field = bad
            if not field.column:
                raise InputError(f"{self.path} line {number}: {field.reason}")
            _fail(self.path, number, field.column, fields[self._index[field.column]], field.reason)
        return rows


class _BadField(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _number(
    fields: list[str], index: Mapping[str, int], column: str, empty: float, finite: bool = False
) -> float:
    text = fields[index[column]].strip() if column in index else ""
    if not text:
        return empty
    try:
        value = float(text)
    except ValueError:
        raise _BadField(column, "not a number") from None
    # finite: an empty cell is the only way to say "none" (wh: the reading has no counter);
    # a 'nan' taken for it would hide a logger's error value.
    if finite and not math.isfinite(value):
        raise _BadField(column, "not a finite number (leave the cell empty for none)")
    return value


def _parse_reading(
    fields: list[str], index: Mapping[str, int], lookup: Mapping[str, int], last: tuple[str, int]
) -> tuple[int, int, float, float]:
    """One row -> (t_ms, machine index, watts, wh); `last`: the previous row's time text, ms."""
    if len(fields) != len(index):
        raise _BadField("", f"expected {len(index)} fields ({','.join(index)}), got {len(fields)}")
    text = fields[index["time"]]
    if text == last[0]:
        t_ms = last[1]
    else:
        try:
            t_ms = parse_time_ms(text)
        except ValueError as err:
            raise _BadField("time", str(err)) from None
    return (
        t_ms,
        lookup.get(fields[index["machine"]], -1),
        _number(fields, index, "watts", math.nan),
        _number(fields, index, "wh", math.nan, finite=True),
    )


# ---------------------------------------------------------------- jobs.csv


def read_jobs(
    path: str | Path, machines: Mapping[str, Machine], now_ms: int | None = None
) -> JobsFile:
    """Parse and check jobs.csv: known machines, times in the plausible window (see
    ReadingsCsv), end after start, no overlaps per machine."""
    window = plausible_window(now_ms)
    file = _CsvFile(Path(path), JOBS_COLUMNS, JOBS_OPTIONAL)
    path, names = file.path, file.names
    index = {name: i for i, name in enumerate(names)}
    seen: dict[tuple[str, str], int] = {}  # (machine, job_id) -> line
    rows: dict[str, list[tuple[ExplicitJob, int]]] = {}
    records = (r for line, block in file.blocks() for r in file.records(line, block))
    for line, fields in records:
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
    return JobsFile(path=path, sha256=file.sha256, jobs=jobs, lines=seen)


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
