"""The simulated meter, read by mbpoll (a Modbus master nobody here wrote), over TCP and RTU.

If our simulator and our decoder shared a mistake (word order, scale, addressing), tests
of one against the other would pass; mbpoll decodes the same registers independently.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from pymodbus.constants import ExcCodes

from agent.modbus_meter import MeterServer, Rtu, SimulatedMeter, Tcp, in_map_units
from tests.modbus.modbus_helpers import SocatPtyPair, shipped_map
from tests.servers import LOOPBACK, find_binary, free_port, port_open

pytestmark = pytest.mark.services


def _mbpoll(*args: str) -> dict[int, float]:
    """Run mbpoll once; {1-based reference: value} from its '[ref]: value' lines."""
    out = subprocess.run(
        [find_binary("mbpoll"), "-1", "-o", "2", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return {int(r): float(v) for r, v in re.findall(r"^\[(\d+)\]:\s+(\S+)", out.stdout, re.M)}


def test_mbpoll_reads_the_sdm630_floats_we_serve() -> None:
    m = shipped_map("sdm630")
    values = {"voltage_l1": 231.5, "total_power": 1234.5, "import_energy": 5000.25}
    port = free_port()
    with MeterServer([SimulatedMeter(7, m, lambda: values)], Tcp(LOOPBACK, port)):
        # Eastron: FC04 floats, high word first (-B); 1-based references: 0x34 -> 53.
        got = _mbpoll(
            "-m",
            "tcp",
            "-p",
            str(port),
            "-a",
            "7",
            "-t",
            "3:float",
            "-B",
            "-r",
            "1",
            "-c",
            "40",
            LOOPBACK,
        )
    assert got[1] == pytest.approx(231.5)
    assert got[0x34 + 1] == pytest.approx(1234.5)
    assert got[0x48 + 1] == pytest.approx(5000.25)


def test_mbpoll_reads_the_em24_low_word_first_integers_we_serve() -> None:
    m = shipped_map("em24")
    port = free_port()
    load = {**in_map_units(m, -1234.5, 12_345_600.0), "frequency": 50.0}
    with MeterServer([SimulatedMeter(1, m, lambda: load)], Tcp(LOOPBACK, port)):
        # mbpoll's 32-bit integers are low word first unless -B: the EM24's order.
        ints = _mbpoll(
            "-m", "tcp", "-p", str(port), "-t", "3:int", "-r", str(0x28 + 1), "-c", "1", LOOPBACK
        )
        words = _mbpoll(
            "-m", "tcp", "-p", str(port), "-t", "3", "-r", str(0x33 + 1), "-c", "3", LOOPBACK
        )
    assert ints == {0x28 + 1: -12345}  # W*10
    assert words[0x33 + 1] == 500  # Hz*10
    # kWh*10 = 123456 = 0x0001E240, low word first
    assert (words[0x34 + 1], words[0x35 + 1]) == (0xE240, 0x0001)


def test_mbpoll_reads_a_pzem_over_rtu_and_sees_its_exception_code(rs485: SocatPtyPair) -> None:
    m = shipped_map("pzem004t")
    meter = SimulatedMeter(1, m, lambda: {"voltage": 230.1, **in_map_units(m, 1234.5, 123456)})
    rtu = ("-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-t", "3")
    with MeterServer([meter], Rtu(str(rs485.meter_end))):
        got = _mbpoll(*rtu, "-r", "1", "-c", "10", str(rs485.gateway_end))
        meter.fault = ExcCodes.DEVICE_FAILURE
        refused = subprocess.run(
            [find_binary("mbpoll"), "-1", *rtu, "-r", "1", "-c", "10", str(rs485.gateway_end)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert got[1] == 2301  # 230.1 V as V*10
    assert (got[4], got[5]) == (12345, 0)  # 1234.5 W as W*10, low word first
    assert (got[6], got[7]) == (0xE240, 0x0001)  # 123456 Wh
    assert refused.returncode != 0
    assert "slave device or server failure" in (refused.stdout + refused.stderr).lower()


def test_the_documented_command_serves_a_meter_mbpoll_can_read() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.modbus_meter",
            "sdm630",
            "--tcp",
            f"{LOOPBACK}:{port}",
            "--watts",
            "1500",
            "--start-kwh",
            "1234",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the simulated meter did not start listening"
            time.sleep(0.05)
        got = _mbpoll(
            "-m",
            "tcp",
            "-p",
            str(port),
            "-t",
            "3:float",
            "-B",
            "-r",
            str(0x34 + 1),
            "-c",
            "11",
            LOOPBACK,
        )
    finally:
        proc.terminate()
        proc.wait(10)
    assert got[0x34 + 1] == 1500.0
    assert 1234.0 <= got[0x48 + 1] < 1235.0  # kWh, growing at 1.5 kW
