"""The pure-module tests again, under real MicroPython (the WebAssembly port, pinned in
tests/firmware/mpy/package.json), plus the heap tests that only mean something there."""

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MPY = HERE / "mpy"
MARKER = "# Runs under MicroPython too"
DUAL = sorted(p.stem for p in HERE.glob("test_fw_*.py") if p.read_text().startswith(MARKER))


@pytest.fixture(scope="module")
def node() -> str:
    """node, with the pinned MicroPython package installed (npm ci) if it is missing."""
    exe = shutil.which("node")
    npm = shutil.which("npm")
    if exe is None or npm is None:
        pytest.fail(
            "node/npm not found: run `make system-deps` (Debian: nodejs npm)", pytrace=False
        )
    if not (MPY / "node_modules" / "@micropython").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=MPY, capture_output=True, text=True
        )
        assert done.returncode == 0, f"npm ci in {MPY} failed:\n{done.stderr}"
    return exe


def _run(node: str, *args: str) -> str:
    done = subprocess.run(
        [node, str(MPY / "run.mjs"), str(ROOT), *args],
        cwd=MPY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_every_pure_module_test_file_is_marked_for_micropython() -> None:
    # Only tests needing CPython's toolbox (servers, jsonschema, subprocess) stay CPython-only.
    cpython_only = {
        "test_fw_micropython",
        "test_fw_protocol_vectors",
        "test_fw_build",
        "test_fw_broker",
        "test_fw_app",
        "test_fw_meter_tables",
        "test_fw_stream_vector",
    }
    every = {p.stem for p in HERE.glob("test_fw_*.py")}
    assert every - cpython_only == set(DUAL)


def test_pure_module_tests_pass_under_micropython(node: str) -> None:
    out = _run(node, *DUAL)
    assert "0 failed" in out and "MicroPython v1.29" in out


def test_no_allocation_per_sample_and_no_heap_drift_under_micropython(node: str) -> None:
    out = _run(node, "mpy_memory", "--steps=mpy_memory:300")
    assert "1 passed, 0 failed" in out and "heap after windows" in out
