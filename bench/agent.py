"""How many simulated sensors one core sustains: the virtual shop against a real mosquitto.

    .venv/bin/python bench/agent.py [--sensors 200] [--seconds 120] [--realtime 0]

Each simulated reading costs the waveform generation (numpy), the firmware's own sampling
loop over its samples (pure Python, one burst of 32 sample sets per second of window), its
window close, encoder and outbox, and one QoS 1 publish with its PUBACK. The agent runs a
fixed simulated span as fast as it can (CPU-bound); its CPU seconds give the readings per
core-second, i.e. sensors x readings-per-second-each that one core carries.

The floor, measured in the same run on the same broker: one paho client publishing the
same payloads QoS 1, one in flight at a time (the agent's discipline), nothing else, per
CPU second of the process. The ratio agent / floor is the share of a reading's cost that
is publishing; the rest is the simulated sensor.

`--realtime N` also runs N sensors at 1 reading/s in real time for `--seconds` and reports
how far the latest window fell behind its due time (a sustained load stays under a second).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.cli import write_shop_toml
from agent.liverun import RunOptions, RunReport
from agent.localservers import LOOPBACK, Mosquitto
from agent.shopday import DEMO_DAY
from agent.shopplan import load_plan
from agent.virtualshop import VirtualShop
from gateway.config import load_config

PAYLOAD = (
    b'{"v":1,"b":1,"s":4242,"t":1794898800000,"u":42420117,"w":1000,"n":32,"vr":230.1,'
    b'"ch":[[35.347,7001.2,28.942]],"c":0,"x":0,"e":0,"r":-55,"h":null}'
)


def floor_publishes_per_s(broker: Mosquitto, count: int) -> float:
    """Bare paho QoS 1 publishes, one in flight, per CPU second of this process."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor")
    acked = threading.Event()
    client.on_publish = lambda *_: acked.set()
    client.connect(LOOPBACK, broker.port)
    client.loop_start()
    start = time.process_time()
    for _ in range(count):
        acked.clear()
        client.publish("shopwatt/v1/bench/m/s/reading", PAYLOAD, qos=1)
        acked.wait(10)
    elapsed = time.process_time() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def run_shop(
    broker: Mosquitto, sensors: int, seconds: float, rate: float, speed: float, now: bool
) -> tuple[RunReport, float]:
    """Run the demo plan's machines (replicated) and return the report and CPU seconds."""
    plan = load_plan()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "shop.toml"
        write_shop_toml(config, plan, sensors, (LOOPBACK, broker.port))
        start = dt.datetime.combine(DEMO_DAY, dt.time(9, 0), plan.site.tz)
        opts = RunOptions(
            host=LOOPBACK,
            port=broker.port,
            duration_s=seconds,
            rate_hz=rate,
            speed=speed,
            start_ms=None if now else int(start.timestamp() * 1000),
        )
        shop = VirtualShop(load_config(config), plan, opts)
        cpu0 = time.process_time()
        report = shop.run()
        return report, time.process_time() - cpu0


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120.0, help="Simulated seconds.")
    parser.add_argument("--realtime", type=int, default=0, help="Also N sensors in real time.")
    args = parser.parse_args()
    broker = Mosquitto().start()
    try:
        floor = floor_publishes_per_s(broker, 5000)
        print(f"floor: bare paho QoS 1, one in flight: {floor:,.0f} publishes per core-second")
        for rate in (1.0, 0.1):
            # Ten times the span at 0.1/s: the same number of readings, ten bursts each.
            span = args.seconds / rate
            report, cpu_s = run_shop(broker, args.sensors, span, rate, 1e6, now=False)
            per_core = report.readings / cpu_s
            print(
                f"agent, {1 / rate:g} s windows: {args.sensors} sensors x {span:g} s = "
                f"{report.readings:,} readings in {cpu_s:.1f} CPU s: {per_core:,.0f} readings "
                f"per core-second (ratio to floor {per_core / floor:.2f}) = "
                f"{per_core / rate:,.0f} sensors per core; "
                + ("all delivered" if report.delivered else "NOT all delivered")
            )
        if args.realtime:
            report, cpu_s = run_shop(broker, args.realtime, args.seconds, 1.0, 1.0, now=True)
            print(
                f"real time: {args.realtime} sensors x 1 reading/s for {args.seconds:g} s: "
                f"{report.readings:,} readings, {cpu_s / report.wall_s:.0%} of a core, latest "
                f"window {report.max_lag_s:.2f} s behind its due time"
            )
    finally:
        broker.close()


if __name__ == "__main__":
    main()
