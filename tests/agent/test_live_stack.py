"""The virtual shop through a real broker and the real gateway: jobs and energy as simulated.

One accelerated hour of tests/agent/data/live-shop.toml (a mill with a Wi-Fi outage in
the middle of its job, a laser whose operator books the job, a printer whose sensor
reboots) at one reading per second per sensor, through mosquitto and `shopwatt run`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agent.cli import write_shop_toml
from agent.liverun import RunOptions, RunReport
from agent.serviceshop import BROKER_CONFIG, Gateway
from agent.shopplan import load_plan
from agent.stackdemo import wait_for_ledger
from agent.virtualshop import VirtualShop
from gateway.config import ShopConfig, load_config
from gateway.ledger import Ledger
from gateway.ledger.ledger import MachineStatus
from gateway.ledger.rows import LedgerRow
from tests.agent.livedata import DAY, PLAN, SCHEDULE
from tests.servers import LOOPBACK, ServerPool

BOUNDARY_MS = 2_000  # one reading per second: a detected edge lands within a window or two


@dataclass(frozen=True)
class LiveRun:
    """What the sensors did and what the gateway made of it."""

    report: RunReport
    status: dict[str, MachineStatus]
    jobs: dict[str, list[LedgerRow]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    """One run shared by the tests below (it is the expensive part)."""
    plan = load_plan(PLAN)
    folder = tmp_path_factory.mktemp("live")
    pool = ServerPool()
    try:
        broker = pool.mosquitto(BROKER_CONFIG)
        config = folder / "shop.toml"
        write_shop_toml(config, plan, None, (LOOPBACK, broker.port))
        cfg = load_config(config)
        gateway = Gateway(config).start().ready()
        try:
            start = dt.datetime.combine(DAY, dt.time(7, 57), plan.site.tz)
            opts = RunOptions(
                host=LOOPBACK,
                port=broker.port,
                duration_s=63 * 60,
                rate_hz=1.0,
                speed=200.0,
                start_ms=int(start.timestamp() * 1000),
                schedule=SCHEDULE,
            )
            report = VirtualShop(cfg, plan, opts).run()
            wait_for_ledger(cfg, report.readings, gateway)
        finally:
            assert gateway.stop() == 0, gateway.tail()
        yield LiveRun(report, _status(cfg), _jobs(cfg))
    finally:
        pool.close()


def _status(cfg: ShopConfig) -> dict[str, MachineStatus]:
    return {m.machine: m for m in Ledger(cfg).status(0).machines}


def _jobs(cfg: ShopConfig) -> dict[str, list[LedgerRow]]:
    rows = Ledger(cfg).select(DAY, DAY + dt.timedelta(days=1)).rows
    jobs: dict[str, list[LedgerRow]] = {m: [] for m in cfg.machines}
    for row in rows:
        if row.kind == "job":
            jobs[row.machine].append(row)
    return jobs


def test_every_reading_reaches_the_ledger_once(live: LiveRun) -> None:
    assert live.report.delivered
    for machine, sent in live.report.machines.items():
        assert live.status[machine].readings == sent.readings, machine
    mill, printer = live.report.machines["mill-1"], live.report.machines["printer-1"]
    assert mill.buffered >= 6 * 60  # the outage's readings came late, from the flash ring
    assert printer.boots == 2  # the reboot: a new boot counter, seq from 0


def test_the_gateway_finds_the_scheduled_jobs_at_their_times(live: LiveRun) -> None:
    for machine, sent in live.report.machines.items():
        found = sorted(live.jobs[machine], key=lambda r: r.start_ms)
        assert len(found) == len(sent.jobs) == 1, machine
        for row, job in zip(found, sent.jobs, strict=True):
            assert abs(row.start_ms - job.start_ms) <= BOUNDARY_MS, machine
            assert abs(row.end_ms - job.end_ms) <= BOUNDARY_MS, machine
    (booked,) = live.jobs["laser-1"]
    assert (booked.job_id, booked.customer) == ("L-1", "Spree Robotics")  # from job events


def test_energy_is_within_one_percent_of_the_profiles_truth(live: LiveRun) -> None:
    for machine, sent in live.report.machines.items():
        # What a sensor could measure: everything except the seconds it had no power.
        measurable = sent.energy_wh - sent.unmeasured_wh
        assert live.status[machine].metered_wh == pytest.approx(measurable, rel=0.01), machine
        for row, true_wh in zip(live.jobs[machine], sent.job_wh, strict=True):
            assert row.amounts.energy_wh == pytest.approx(true_wh, rel=0.01), machine
    assert live.report.machines["printer-1"].unmeasured_wh > 0  # its 20 s without power


def test_an_outage_during_a_job_loses_no_energy(live: LiveRun) -> None:
    mill = live.report.machines["mill-1"]
    (job,) = mill.jobs
    outage = dt.datetime.combine(DAY, dt.time(8, 12), load_plan(PLAN).site.tz)
    assert job.start_ms < outage.timestamp() * 1000 < job.end_ms
    (row,) = live.jobs["mill-1"]
    assert row.amounts.energy_wh == pytest.approx(mill.job_wh[0], rel=0.002)
