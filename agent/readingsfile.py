"""Write readings as the gateway's readings.csv (`time,machine,watts,wh`), vectorised."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from gateway.engine.model import MachineReadings

HEADER = "time,machine,watts,wh\n"


def write_readings_csv(path: Path, machines: Mapping[str, MachineReadings]) -> int:
    """Rows in time order as a live log would have them; returns the number of rows."""
    names = list(machines)
    t = np.concatenate([machines[m].t_ms for m in names])
    code = np.repeat(np.arange(len(names), dtype=np.int32), [len(machines[m]) for m in names])
    order = np.argsort(t, kind="stable")  # stable: machines keep plan order within a second
    # Resolution of the sensors' messages: 0.1 W and 1 mWh (a counter's rounding never adds up).
    watts = np.round(np.concatenate([machines[m].watts for m in names])[order], 1)
    wh = np.round(np.concatenate([machines[m].wh for m in names])[order], 3)
    table = pa.table(
        {
            "time": np.datetime_as_string(t[order].astype("datetime64[ms]"), "s", "UTC"),
            "machine": pa.DictionaryArray.from_arrays(code[order], names),
            "watts": watts,
            "wh": pa.array(wh, from_pandas=True),  # NaN (no counter) -> an empty field
        }
    )
    with path.open("wb") as fh:
        fh.write(HEADER.encode())  # pyarrow would quote the header names
        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return len(t)
