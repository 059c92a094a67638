"""docs/gateway.md, docs/deploy.md and the systemd unit say what the code does."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.inputs import jobevents, mqtt, tracker
from gateway.inputs.protocol import REASONS
from gateway.service import Service

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_MD = (ROOT / "docs" / "gateway.md").read_text()
DEPLOY_MD = (ROOT / "docs" / "deploy.md").read_text()
UNIT = ROOT / "examples" / "shopwatt.service"


def _toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def _with_example_shop(block: str) -> dict[str, object]:
    """The documented block on top of examples/shop.toml (its machines, tariff, site)."""
    shop = tomllib.loads((ROOT / "examples" / "shop.toml").read_text())
    doc = tomllib.loads(
        block.replace("# ... thresholds and costs as in examples/shop.toml ...", "")
    )
    for key in ("mqtt", "influxdb"):
        if key in doc:
            shop[key] = doc[key]
    for machine in doc.get("machine", []):
        if "sensor" in machine:
            shop["machine"][0]["sensor"] = machine["sensor"]  # type: ignore[index]
    return shop


def _service(tmp_path: Path, block: str) -> Service:
    """The service a documented config block makes (built, not started)."""
    cfg = parse_config(_with_example_shop(block), tmp_path / "shop.toml")
    (tmp_path / "mqtt.password").write_text("s3cret\n")
    (tmp_path / "mqtt.password").chmod(0o600)
    return Service(cfg)


@pytest.mark.parametrize("block", [*_toml_blocks(GATEWAY_MD), _toml_blocks(DEPLOY_MD)[-1]])
def test_documented_config_is_valid_and_runs(tmp_path: Path, block: str) -> None:
    _service(tmp_path, block)  # accepted: secrets found, inputs built


def test_every_counter_the_gateway_reports_is_explained(tmp_path: Path) -> None:
    names = {*mqtt.COUNTERS, *tracker.COUNTERS}
    names |= {jobevents.JOB, jobevents.DUPLICATE, jobevents.CONFLICT, jobevents.OVERLAP}
    names.add(jobevents.TOO_OLD)
    names |= set(_service(tmp_path, _toml_blocks(GATEWAY_MD)[0]).counters())
    missing = {n for n in names if f"`{n}`" not in GATEWAY_MD}
    assert not missing, f"counters without a line in docs/gateway.md: {sorted(missing)}"
    # Each reject reason is a counter `rejected_<reason>`, explained by the protocol's table.
    assert "rejected_<reason>" in GATEWAY_MD and mqtt.UNKNOWN_SENSOR in GATEWAY_MD
    assert set(REASONS) <= set(re.findall(r"`([a-z_]+)`", (ROOT / "docs/protocol.md").read_text()))


def test_the_deadletter_topic_is_the_documented_one() -> None:
    assert mqtt.deadletter_topic("<site>") in GATEWAY_MD
    assert f"{mqtt.DEADLETTER_MAX_BYTES} bytes" in GATEWAY_MD
    assert f"At most {mqtt.DEADLETTER_PER_S} dead letters a second" in GATEWAY_MD


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert "ExecStart=/opt/shopwatt/venv/bin/shopwatt run --config /etc/shopwatt/shop.toml" in text
    assert "KillSignal=SIGTERM" in text
    assert "Environment=MALLOC_ARENA_MAX=2" in text  # the memory bench/footprint.py measures
    # Point it at this checkout's entry point: systemd checks that the program exists.
    shopwatt = Path(sys.executable).parent / "shopwatt"
    unit = tmp_path / "shopwatt.service"
    unit.write_text(text.replace("/opt/shopwatt/venv/bin/shopwatt", str(shopwatt)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
