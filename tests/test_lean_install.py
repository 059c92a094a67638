"""A Pi installs and runs the gateway alone: no agent, firmware, pyarrow or InfluxDB client.

Each command runs in a fresh interpreter in which those packages cannot be imported, as
after `pip install shopwatt` without extras (the tests must not reach a package index).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "tests" / "cases" / "explicit_jobs"

# Runs `shopwatt ARGS...` with the top-level packages in argv[1] (comma-separated) missing.
_WITHOUT = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

MISSING = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Missing())
from gateway.cli import main
main(sys.argv[2:], prog_name="shopwatt")
"""

NOT_INSTALLED = "agent,firmware,influxdb_client"


def shopwatt_without(missing: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`shopwatt ARGS` in a fresh interpreter that cannot import the `missing` packages."""
    argv = [sys.executable, "-c", _WITHOUT, missing, *map(str, args)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "missing",
    [
        NOT_INSTALLED,
        f"{NOT_INSTALLED},pyarrow",
    ],
)
def test_replay_and_export_work_without_the_optional_packages(tmp_path: Path, missing: str) -> None:
    case = Path(shutil.copytree(CASE, tmp_path / "case"))
    config = case / "shop.toml"
    replayed = shopwatt_without(
        missing, "replay", "--config", config, "--input", case / "readings.csv", "--jobs",
        case / "jobs.csv", "--create-customers",
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    exported = shopwatt_without(
        missing, "export", "--config", config, "--from", "2026-11-03", "--to", "2026-11-04"
    )
    assert exported.returncode == 0, exported.stderr
    assert {"J-1", "J-2"} <= {row["job_id"] for row in csv.DictReader(io.StringIO(exported.stdout))}


def test_demo_without_the_agent_says_what_to_install() -> None:
    done = shopwatt_without(NOT_INSTALLED, "demo")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "shopwatt: error: `shopwatt demo` needs the agent: pip install 'shopwatt[agent]' "
        "(No module named 'agent')"
    ]
    listed = shopwatt_without(NOT_INSTALLED, "--help")
    assert listed.returncode == 0 and "demo" in listed.stdout


def test_no_influxdb_client_library_is_installed_for_either_api() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [d for group in project["optional-dependencies"].values() for d in group]
    assert not [d for d in project["dependencies"] + extras if d.startswith("influxdb-client")]


def test_web_without_its_packages_says_what_to_install(tmp_path: Path) -> None:
    config = Path(shutil.copytree(CASE, tmp_path / "case")) / "shop.toml"
    done = shopwatt_without(f"{NOT_INSTALLED},uvicorn,starlette", "web", "--config", config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "shopwatt: error: `shopwatt web` needs the web page's packages: pip install "
        "'shopwatt[web]' (No module named 'uvicorn')"
    ]
    user = shopwatt_without("argon2", "web", "user", "add", "owen", "--role", "owner")
    assert user.returncode == 2 and user.stderr.splitlines() == [
        "shopwatt: error: `shopwatt web` needs the web page's packages: pip install "
        "'shopwatt[web]' (No module named 'argon2')"
    ]
