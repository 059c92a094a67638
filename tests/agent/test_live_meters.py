"""Simulated meters: the gateway's own Modbus poller reads a machine's true power and energy."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.cli import write_shop_toml
from agent.liverun import RunOptions
from agent.shopplan import load_plan
from agent.virtualshop import VirtualShop
from gateway.config import load_config
from gateway.engine.model import Reading
from gateway.errors import ConfigError
from gateway.inputs.modbus import ModbusInput
from tests.agent.livedata import DATA
from tests.servers import LOOPBACK, free_port

pytestmark = pytest.mark.services
PLAN = DATA / "metered-shop.toml"


def _config(folder: Path, port: int) -> Path:
    path = folder / "shop.toml"
    write_shop_toml(path, load_plan(PLAN), None, (LOOPBACK, 1883), meter_bus=(LOOPBACK, port))
    # Poll every second (the default 5 s would give a short test two readings).
    path.write_text(path.read_text().replace("device_id = 1\n", "device_id = 1\npoll_s = 1.0\n"))
    return path


def test_the_gateways_poller_reads_the_profiles_power_and_counter(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, free_port()))
    shop = VirtualShop(cfg, load_plan(PLAN), RunOptions(LOOPBACK, 1, duration_s=6.0))
    got: list[Reading] = []
    poller = ModbusInput.from_config(cfg)
    runner = threading.Thread(target=shop.run)
    runner.start()
    time.sleep(0.5)  # the meter server is up
    poller.start(got.append)
    runner.join(30)
    poller.stop()
    assert len(got) >= 4
    for r in got:
        assert r.machine == "lathe-m" and r.sensor == "lathe-m-meter" and not r.stale
        watts, _ = shop.timeline.power_at("lathe-m", np.array([float(r.t_ms)]))
        assert r.watts == pytest.approx(float(watts[0]), rel=0.01)
    first, last = got[0], got[-1]
    assert first.wh is not None and last.wh is not None
    true_wh = shop.timeline.energy_wh("lathe-m", first.t_ms, last.t_ms)
    # The meter shows whole steps of its counter (the map's resolution, 10 Wh on an SDM).
    step = cfg.machines["lathe-m"].counter_resolution_wh
    assert last.wh - first.wh == pytest.approx(true_wh, abs=step)
    assert shop.meters.requests("lathe-m") >= len(got)


def test_meters_refuse_accelerated_time(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, free_port()))
    with pytest.raises(ConfigError, match=r"lathe-m.*need --speed 1 \(not 60\)"):
        VirtualShop(cfg, load_plan(PLAN), RunOptions(LOOPBACK, 1, duration_s=60, speed=60))
