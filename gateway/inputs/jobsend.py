"""Job events sent to the site's broker as a button sends them (docs/protocol.md, Job event).

`shopwatt job start|stop` and the web page's floor call `start_job` / `stop_job`: the running
gateway (`shopwatt run`) takes a start from the command line exactly as one from a button,
through the one rule for job events (inputs/jobevents.py). Writing the job into the ledger
directly instead would race with the gateway's own job book.
"""

from __future__ import annotations

import json
import os
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import ShopConfig
from gateway.engine.localtime import local_time
from gateway.errors import InputError
from gateway.inputs.mqtt_tls import tls_context
from gateway.inputs.protocol import JobEvent, Rejected, decode_job
from gateway.ledger import Ledger
from gateway.ledger.assignments import Assignment
from gateway.secrets import read_secret

ACK_WAIT_S = 10.0  # how long to wait for the broker to take the event (QoS 1)


def job_topic(site: str, machine: str) -> str:
    """The machine's job topic."""
    return f"shopwatt/v1/{site}/{machine}/job"


def send_job_event(cfg: ShopConfig, machine: str, doc: dict[str, Any]) -> JobEvent:
    """Check the event as the gateway will, publish it with QoS 1 and wait for the broker."""
    if cfg.mqtt is None:
        raise InputError(
            f"{cfg.source}: no [mqtt] section: job events reach the gateway (`shopwatt run`) "
            "through its broker"
        )
    payload = json.dumps(doc, separators=(",", ":")).encode()
    try:
        event = decode_job(payload)
    except Rejected as err:
        raise InputError(f"job event for {machine}: {err}") from None
    mqtt = cfg.mqtt
    # Its own client id: the gateway's persistent session must not be taken over.
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{mqtt.client_id}-job-{os.getpid()}"
    )
    secret = read_secret(mqtt, cfg.source.parent, "mqtt")
    if mqtt.username:
        client.username_pw_set(mqtt.username, secret.reveal() if secret else None)
    context = tls_context(mqtt, cfg.source.parent)
    if context is not None:
        client.tls_set_context(context)
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s)
    except OSError as err:
        raise InputError(f"[mqtt] {mqtt.host}:{mqtt.port}: cannot connect: {err}") from None
    client.loop_start()
    try:
        sent = client.publish(job_topic(cfg.site.id, machine), payload, qos=1)
        sent.wait_for_publish(ACK_WAIT_S)
        if not sent.is_published():
            raise InputError(
                f"[mqtt] {mqtt.host}:{mqtt.port}: the broker did not take the job event "
                f"within {ACK_WAIT_S:g} s (refused by its ACL, or not reachable)"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return event


def start_job(
    ledger: Ledger, machine: str, job_id: str | None, customer: str, order: str, src: str, t_ms: int
) -> tuple[str, str]:
    """Start a job for a customer (id or display name) with its order, as the machine's
    button does; returns the job id (default: <machine>-<local date-time>) and customer id."""
    cfg = ledger.cfg
    ledger.machine(machine)
    who = ledger.customer(customer)
    job_id = job_id or f"{machine}-{local_time(t_ms, cfg.site.tz):%Y%m%d-%H%M%S}"
    doc = {"v": 1, "event": "start", "job": job_id, "customer": who.id, "t": t_ms, "src": src}
    send_job_event(cfg, machine, doc)
    # The order is no field of the job event: stored beside it for the job starting then.
    if order.strip():
        ledger.note(Assignment(machine, t_ms, job_id, who.id, order.strip()))
    detail = {"machine": machine, "job": job_id, "t_ms": t_ms, "customer": who.id}
    ledger.record("job start", detail | {"order": order.strip()})
    return job_id, who.id


def stop_job(
    ledger: Ledger, machine: str, job_id: str | None, parts: int, scrap: int, src: str, t_ms: int
) -> str:
    """Stop the machine's running job (or the one named) with the parts it made, as the
    machine's button does; returns the job id."""
    cfg = ledger.cfg
    ledger.machine(machine)
    job_id, start, customer = ledger.running_job(machine, job_id)
    doc = {"v": 1, "event": "stop", "job": job_id, "parts": parts, "t": t_ms, "src": src}
    send_job_event(cfg, machine, doc)
    # Scrap is no field of the job event either: both stored for the job that started then.
    if parts or scrap:
        ledger.note(Assignment(machine, start, job_id, customer, "", parts, scrap))
    detail = {"machine": machine, "job": job_id, "t_ms": t_ms, "parts": parts, "scrap": scrap}
    ledger.record("job stop", detail)
    return job_id
