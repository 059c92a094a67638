"""End-to-end ingest rate of `shopwatt run` against a bare paho QoS 1 subscriber.

    .venv/bin/python bench/ingest.py [--readings 40000] [--sensors 50] [--rounds 3]
                                     [--rss-sensors 500] [--rss-windows 60]

Every side gets the same readings (encoded by the firmware's encoder), queued by the
broker for its persistent session while it is away; its clock runs from its connection
until it has them all, so neither the publisher nor a start-up is measured:

- floors: a bare paho QoS 1 subscriber (auto-ack) that only counts messages, with MQTT
  3.1.1 and with MQTT 5 (the gateway's protocol: paho spends about twice as long per
  MQTT 5 message, so the MQTT 5 floor is the like-for-like one);
- gateway: `shopwatt run` as its own process, MQTT 5 QoS 1 -> tracker -> ledger (one
  durable transaction per batch) + outbox -> InfluxDB 1.6.7. Its time ends when the
  ledger holds every reading AND InfluxDB has every `power` point (zero loss is
  checked, not assumed).

Rounds alternate the three sides; medians are compared. Goal: gateway >= 0.5 x floor.
Then the peak RSS of the gateway process (VmHWM) with --rss-sensors sensors, each on
its own machine, coming back to a backlog of --rss-windows windows per sensor (goal:
< 150 MB).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.localservers import LOOPBACK, Influxd, Mosquitto, ServerPool
from agent.serviceshop import (
    BROKER_CONFIG,
    FakeSensor,
    Gateway,
    Publisher,
    config,
    ledger_readings,
    write_config,
)
from gateway.inputs.mqtt import RECEIVE_MAXIMUM, SESSION_NEVER_EXPIRES

GOAL = 0.5
RSS_GOAL_MB = 150.0
WAIT_S = 600.0


def messages(sensors: int, per_sensor: int) -> list[tuple[str, bytes]]:
    """Readings of `sensors` sensors, interleaved as they would arrive (m000/s000, ...)."""
    fakes = [FakeSensor(f"m{k:03d}", f"s{k:03d}") for k in range(sensors)]
    out = []
    for i in range(per_sensor):
        watts = 1800 if (i // 30) % 2 else 45  # 5-minute jobs, 5-minute pauses
        out += [(f.topic, f.reading(watts)) for f in fakes]
    return out


def floor_rate(broker: Mosquitto, msgs: list[tuple[str, bytes]], protocol: int) -> float:
    """Messages/s a bare paho QoS 1 subscriber (auto-ack) takes out of its broker queue."""
    got = 0
    done = threading.Event()

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got == len(msgs):
            done.set()

    def connected() -> paho.Client:
        session = {} if protocol == paho.MQTTv5 else {"clean_session": False}
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-floor", protocol=protocol, **session
        )
        c.on_message = on_message
        if protocol == paho.MQTTv5:  # as the gateway: persistent session, Receive Maximum
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            c.connect(LOOPBACK, broker.port, clean_start=False, properties=props)
        else:
            c.connect(LOOPBACK, broker.port)
        c.loop_start()
        return c

    sub = connected()  # a persistent session with its subscription, then away
    sub.subscribe("shopwatt/v1/+/+/+/reading", qos=1)
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    _queue(broker, msgs)
    start = time.perf_counter()
    sub = connected()
    if not done.wait(WAIT_S):
        raise SystemExit(f"floor: only {got} of {len(msgs)} messages arrived")
    elapsed = time.perf_counter() - start
    sub.disconnect()
    sub.loop_stop()
    return len(msgs) / elapsed


def _queue(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    """Publish while the consumer is away: the broker queues them for its session."""
    publisher = Publisher(broker)
    publisher.send(msgs)
    publisher.close()


def _wait(what: str, ok: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def _shop(pool: ServerPool, influxd: Influxd, db: str, sensors: int) -> tuple[Mosquitto, str, Path]:
    """A broker, a database and a shop.toml with one machine per sensor (m000/s000, ...)."""
    broker = pool.mosquitto(BROKER_CONFIG)
    influxd.create_database(db)
    folder = Path(tempfile.mkdtemp(prefix=f"shopwatt-{db}-"))
    machines = {f"m{k:03d}": f"s{k:03d}" for k in range(sensors)}
    return broker, db, write_config(folder, broker, influxd, db, machines, batch_s=1.0)


def gateway_rate(
    pool: ServerPool, influxd: Influxd, msgs: list[tuple[str, bytes]], sensors: int
) -> float:
    """Readings/s through `shopwatt run` until the ledger and InfluxDB hold all of them.

    The gateway creates its session and stops; the readings are queued; the clock runs
    from the moment the restarted gateway is connected (its start-up is not ingest).
    """
    # A fresh database each round: points left by an earlier round would count as arrived.
    broker, db, path = _shop(pool, influxd, f"bench_ingest_{time.monotonic_ns()}", sensors)
    cfg = config(path)
    gw = Gateway(path)
    with gw:
        pass
    _queue(broker, msgs)
    connected = gw.log().count("MQTT connected")
    gw.start()  # not `with gw`: that waits for the subscription, long after messages flow
    try:
        _wait("the connection", lambda: gw.log().count("MQTT connected") > connected)
        start = time.perf_counter()
        _wait("the ledger", lambda: sum(ledger_readings(cfg).values()) == len(msgs))
        q = 'SELECT count("watts") FROM "power"'
        _wait("InfluxDB", lambda: (r := influxd.rows(q, db)) and r[0]["count"] == len(msgs))
        elapsed = time.perf_counter() - start
        gw.stop()
    finally:
        gw.__exit__()
    influxd.drop_database(db)
    return len(msgs) / elapsed


def peak_rss_mb(pool: ServerPool, influxd: Influxd, sensors: int, per_sensor: int) -> float:
    """VmHWM of the gateway process with many sensors, the worst case: it comes back to a
    backlog (every sensor sent per_sensor windows while it was away) and takes the broker's
    full Receive Maximum at once."""
    broker, _, path = _shop(pool, influxd, "bench_rss", sensors)
    cfg = config(path)
    gw = Gateway(path)
    with gw:
        pass
    msgs = messages(sensors, per_sensor)
    _queue(broker, msgs)
    gw.start()
    try:
        _wait("the ledger", lambda: sum(ledger_readings(cfg).values()) == len(msgs))
        assert gw.proc is not None
        status = Path(f"/proc/{gw.proc.pid}/status").read_text()
        hwm_kb = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
        )
        gw.stop()
    finally:
        gw.__exit__()
    return hwm_kb / 1024


def main() -> None:
    """Run the comparison in alternating rounds and print the medians."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=40_000)
    ap.add_argument("--sensors", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rss-sensors", type=int, default=500)
    ap.add_argument("--rss-windows", type=int, default=60, help="backlog per sensor for RSS")
    args = ap.parse_args()
    msgs = messages(args.sensors, args.readings // args.sensors)
    v3: list[float] = []
    v5: list[float] = []
    gateway: list[float] = []
    pool = ServerPool()
    try:
        influxd = pool.influxd()
        # Rounds alternate, so load from whatever else runs on the machine hits all sides.
        for _ in range(args.rounds):
            v3.append(floor_rate(pool.mosquitto(BROKER_CONFIG), msgs, paho.MQTTv311))
            v5.append(floor_rate(pool.mosquitto(BROKER_CONFIG), msgs, paho.MQTTv5))
            gateway.append(gateway_rate(pool, influxd, msgs, args.sensors))
        rss = peak_rss_mb(pool, influxd, args.rss_sensors, args.rss_windows)
    finally:
        pool.close()
    f3, f5, gw = (statistics.median(x) for x in (v3, v5, gateway))
    print(
        f"readings              : {len(msgs):,} from {args.sensors} sensors, {args.rounds} rounds"
    )
    print(f"bare paho, MQTT 3.1.1 : {f3:10,.0f} readings/s  {_spread(v3)}")
    print(f"bare paho, MQTT 5     : {f5:10,.0f} readings/s  {_spread(v5)}")
    print(f"shopwatt run (MQTT 5) : {gw:10,.0f} readings/s  {_spread(gateway)}")
    print(f"ratio vs MQTT 5 floor : {gw / f5:.2f}  (goal >= {GOAL}; same protocol as the gateway)")
    print(f"ratio vs 3.1.1 floor  : {gw / f3:.2f}")
    goal = f"(goal < {RSS_GOAL_MB:.0f})"
    backlog = f"{args.rss_sensors} sensors, a backlog of {args.rss_windows} windows each"
    print(f"peak RSS              : {rss:.0f} MB with {backlog} {goal}")


def _spread(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:,.0f}" for v in values) + ")"


if __name__ == "__main__":
    main()
