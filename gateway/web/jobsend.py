"""Start and stop buttons: the page sends the protocol's job event (docs/protocol.md) to the
broker, exactly as an operator button or a CNC macro does; `shopwatt run` takes it from
there (dedup, overlap and conflict rules in gateway/inputs/jobevents.py)."""

from __future__ import annotations

import json
import secrets

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import ShopConfig
from gateway.errors import ShopwattError
from gateway.inputs.mqtt_tls import tls_context
from gateway.inputs.protocol import Rejected, decode_job
from gateway.secrets import read_secret

SRC = "web"  # the event's `src`: the page, with the user's name after it
_TIMEOUT_S = 5.0


class JobEventError(ShopwattError):
    """The job event was refused before sending, or the broker could not be reached."""


def job_topic(site: str, machine: str) -> str:
    """The machine's job topic."""
    return f"shopwatt/v1/{site}/{machine}/job"


def send_job_event(
    cfg: ShopConfig,
    machine: str,
    event: str,
    job: str,
    t_ms: int,
    user: str,
    customer: str = "",
    parts: int | None = None,
) -> None:
    """Publish one start or stop (QoS 1) and wait until the broker has it."""
    if cfg.mqtt is None:
        raise JobEventError(f"{cfg.source}: job buttons need an [mqtt] section and `shopwatt run`")
    if machine not in cfg.machines:
        raise JobEventError(f"machine = {machine!r}: not in {cfg.source}")
    doc: dict[str, object] = {"v": 1, "event": event, "job": job, "t": t_ms, "src": f"{SRC}:{user}"}
    if event == "start":
        doc["customer"] = customer
    elif parts is not None:
        doc["parts"] = parts
    payload = json.dumps(doc, separators=(",", ":")).encode()
    try:
        decode_job(payload)  # the gateway's own check: refused here, not silently there
    except Rejected as err:
        raise JobEventError(f"job event refused: {err}") from None
    _publish(cfg, job_topic(cfg.site.id, machine), payload)


def _publish(cfg: ShopConfig, topic: str, payload: bytes) -> None:
    mqtt = cfg.mqtt
    assert mqtt is not None
    # Its own client id: the service's persistent session must never be taken over.
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{mqtt.client_id}-web-{secrets.token_hex(4)}"
    )
    if mqtt.username:
        password = read_secret(mqtt, cfg.source.parent, "mqtt")
        client.username_pw_set(mqtt.username, password.reveal() if password else None)
    tls = tls_context(mqtt, cfg.source.parent)
    if tls is not None:
        client.tls_set_context(tls)
    where = f"MQTT broker {mqtt.host}:{mqtt.port}"
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=30)
    except OSError as err:
        raise JobEventError(f"{where}: {err.strerror or err}") from None
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(_TIMEOUT_S)
        if not info.is_published():
            raise JobEventError(f"{where}: the job event was not acknowledged in {_TIMEOUT_S} s")
    finally:
        client.disconnect()
        client.loop_stop()
