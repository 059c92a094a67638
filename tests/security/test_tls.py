"""The broker's TLS listener: the provisioned CA gets in, plain TCP and strangers do not."""

from __future__ import annotations

import socket
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from security_helpers import GATEWAY_USER, Clients, gateway_password, now

from agent.localservers import ProvisionedBroker
from gateway.config import load_config
from gateway.errors import ProvisionError
from gateway.provision.broker import BrokerOptions, Endpoint, provision_broker
from gateway.provision.tls import SERVER_DAYS

# An MQTT 3.1.1 CONNECT for client id "x", clean session, keepalive 60, no credentials.
CONNECT = bytes([0x10, 13, 0, 4, *b"MQTT", 4, 0x02, 0, 60, 0, 1, *b"x"])


def _handshake(port: int, context: ssl.SSLContext, name: str = "127.0.0.1") -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return str(tls.version())


def test_a_client_trusting_the_provisioned_ca_connects_and_authenticates(
    tls_broker: ProvisionedBroker, shop: Path, clients: Clients
) -> None:
    ca = tls_broker.layout.ca_cert
    assert _handshake(tls_broker.tls_port, ssl.create_default_context(cafile=ca)) in (
        "TLSv1.2",
        "TLSv1.3",
    )
    gw = clients(tls_broker.tls_port, GATEWAY_USER, gateway_password(shop), ca=ca)
    assert gw.accepted()
    assert not clients(tls_broker.tls_port, GATEWAY_USER, "wrong", ca=ca).accepted()


def test_a_client_that_does_not_trust_the_local_ca_refuses_the_broker(
    tls_broker: ProvisionedBroker,
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_broker.tls_port, ssl.create_default_context())  # the system's CAs only
    # The certificate names the addresses it was issued for, and no other.
    ca = ssl.create_default_context(cafile=tls_broker.layout.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn.t match"):
        _handshake(tls_broker.tls_port, ca, name="gateway.example")


def test_plain_mqtt_on_the_tls_listener_gets_no_answer(tls_broker: ProvisionedBroker) -> None:
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=10) as raw:
        raw.sendall(CONNECT)
        try:
            answer = raw.recv(64)  # the broker closes: b"" (or a reset)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"\x20")  # never a CONNACK


def test_the_ca_is_kept_and_the_server_certificate_renewed_only_when_needed(shop: Path) -> None:
    cfg = load_config(shop)
    opts = BrokerOptions(
        listen=[], tls_listen=[Endpoint("127.0.0.1", 8883)], tls_names=["gw.local"], user="root"
    )
    first = provision_broker(cfg, opts, now())
    layout_dir = first.conf.parent
    ca, cert = (layout_dir / "ca.crt").read_bytes(), (layout_dir / "server.crt").read_bytes()
    assert first.ca_created

    again = provision_broker(cfg, opts, now())
    assert not again.ca_created and again.changed == []
    assert (layout_dir / "server.crt").read_bytes() == cert

    near_expiry = now() + timedelta(days=SERVER_DAYS - 10)
    renewed = provision_broker(cfg, opts, near_expiry)
    assert layout_dir / "server.crt" in renewed.changed
    assert (layout_dir / "ca.crt").read_bytes() == ca  # clients keep trusting the same CA

    more_names = BrokerOptions(
        listen=[], tls_listen=opts.tls_listen, tls_names=["gw.local", "10.0.0.2"], user="root"
    )
    provision_broker(cfg, more_names, now())
    issued = x509.load_pem_x509_certificate((layout_dir / "server.crt").read_bytes())
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in names} == {"gw.local", "10.0.0.2"}


def test_the_ca_key_stays_out_of_the_brokers_folder(shop: Path) -> None:
    cfg = load_config(shop)
    opts = BrokerOptions(
        listen=[], tls_listen=[Endpoint("0.0.0.0", 8883)], tls_names=["gw.local"], user="root"
    )
    conf = provision_broker(cfg, opts, now()).conf
    keys = sorted(p.name for p in conf.parent.iterdir() if p.suffix == ".key")
    assert keys == ["server.key"]
    assert (cfg.storage_dir / "provision" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (conf.parent / "server.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["", "a b", "http://x", "user@host"])
def test_a_bad_tls_name_is_refused(shop: Path, name: str) -> None:
    opts = BrokerOptions(
        listen=[], tls_listen=[Endpoint("0.0.0.0", 8883)], tls_names=[name], user="root"
    )
    with pytest.raises(ProvisionError, match="--tls-name"):
        provision_broker(load_config(shop), opts, now())
