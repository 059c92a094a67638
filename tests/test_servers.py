"""The shared server fixtures: real servers come up, keep data across restarts, never linger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import Influxd, Mosquitto, ServerError, ServerPool, find_binary

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    """True while pid is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(ServerError, match=r"make system-deps"):
        find_binary("shopwatt-no-such-server")


def test_influxd_answers_queries_on_a_fresh_database(influxd: Influxd, influx_db: str) -> None:
    influxd.write(["power,machine=m1 watts=5 1000", "power,machine=m2 watts=7 1000"], influx_db)
    rows = influxd.rows("SELECT sum(watts) FROM power", influx_db)
    assert rows[0]["sum"] == 12
    assert influxd.url.startswith("http://127.0.0.1:")


def test_influxd_keeps_data_across_a_crash(servers: ServerPool) -> None:
    server = servers.influxd()
    db = server.create_database("crash")
    server.write([f"p v={i} {i}" for i in range(1, 101)], db)
    old_pid = server.pid
    assert old_pid is not None
    server.kill()
    assert not server.running and _wait_gone(old_pid)
    server.start()
    assert server.pid != old_pid
    assert server.rows("SELECT count(v), sum(v) FROM p", db)[0] | {"time": 0} == {
        "time": 0,
        "count": 100,
        "sum": 5050,
    }


def _retained(broker: Mosquitto, topic: str) -> bytes | None:
    """The retained message on topic, or None (waits for the broker's answer)."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, msg: got.append(bytes(msg.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.subscribe("$SYS/broker/version")  # always published: marks "retained sent"
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    return next((p for p in got if not p.startswith(b"mosquitto version")), None)


def test_mosquitto_keeps_retained_messages_across_restart(mosquitto: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    client.publish("shop/status", b"online", qos=1, retain=True).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    port = mosquitto.port
    mosquitto.restart()
    assert mosquitto.port == port
    assert _retained(mosquitto, "shop/status") == b"online"


def test_v2_front_maps_the_v2_write_api_onto_influxd_1x(
    servers: ServerPool, influxd: Influxd, influx_db: str
) -> None:
    front = servers.v2_front(influxd)
    url = f"{front.url}/api/v2/write?bucket={influx_db}/autogen&precision=ms"

    def post(body: bytes) -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(url, body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, {}
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    assert post(b"power,machine=m1 watts=3 1700000000000") == (204, {})
    status, error = post(b"power,machine=m1 watts=")
    assert status == 400 and "unable to parse" in error["message"]  # v2's error shape
    rows = influxd.rows("SELECT watts FROM power", influx_db)
    assert [(r["time"], r["watts"]) for r in rows] == [(1700000000000, 3)]
    assert [r.path for r in front.requests] == ["/api/v2/write"] * 2


def test_a_killed_test_process_leaves_no_server_behind(tmp_path: Path) -> None:
    # A child starts a broker and is then SIGKILLed (no atexit, no finalizers): the broker
    # must die with it (parent-death signal), or fault-test runs would leak processes.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.servers import Mosquitto;"
        "from pathlib import Path; m = Mosquitto(root=Path(sys.argv[2])).start();"
        "print(m.pid, flush=True);"
        "import time; time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    broker_pid = int(child.stdout.readline())
    assert _alive(broker_pid)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _wait_gone(broker_pid), f"mosquitto {broker_pid} outlived its test process"
