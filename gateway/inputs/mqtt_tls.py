"""TLS for the gateway's MQTT connection: the context from [mqtt], and why a connect failed.

The broker's certificate chain and host name are always verified (docs/security.md): a
gateway that talks to a central broker over the internet must not be fooled by whoever
sits in between, so there is no setting to skip either check.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config import Mqtt
from gateway.errors import ConfigError
from gateway.secrets import require_private_file, resolve_path


def tls_context(cfg: Mqtt, config_dir: Path) -> ssl.SSLContext | None:
    """The client's TLS context for [mqtt] (None when tls is off); errors name the key."""
    if not cfg.tls:
        return None
    ca = _existing(cfg.ca_file, "ca_file", config_dir) if cfg.ca_file else None
    try:
        # CERT_REQUIRED and check_hostname are create_default_context's defaults.
        context = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"mqtt.ca_file = {cfg.ca_file!r}: {ca} holds no PEM certificate ({_reason(err)})"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # 1.0/1.1 are broken; brokers do 1.2+
    if cfg.cert_file:
        cert = _existing(cfg.cert_file, "cert_file", config_dir)
        key = _existing(cfg.key_file, "key_file", config_dir)
        require_private_file(key, f"mqtt.key_file = {cfg.key_file!r}")
        try:
            # An encrypted key would make OpenSSL prompt on a terminal the service lacks:
            # the empty password turns that into an error here.
            context.load_cert_chain(cert, key, password=b"")
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"mqtt.cert_file = {cfg.cert_file!r}, mqtt.key_file = {cfg.key_file!r}: "
                f"not a PEM certificate and its unencrypted private key ({_reason(err)})"
            ) from None
    return context


def _existing(name: str, key: str, config_dir: Path) -> Path:
    path = resolve_path(name, config_dir)
    if not path.is_file():
        raise ConfigError(f"mqtt.{key} = {name!r}: {path} is not a file")
    return path


def _reason(err: OSError) -> str:
    """OpenSSL's short reason ('CERTIFICATE_VERIFY_FAILED'), else the error's text."""
    return str(getattr(err, "reason", None) or err.strerror or err)


def describe_connect_failure(err: BaseException | None, cfg: Mqtt) -> str:
    """Why a connection attempt failed, in words a shop owner can act on (no secrets)."""
    where = f"{cfg.host}:{cfg.port}"
    trust = f"mqtt.ca_file = {cfg.ca_file!r}" if cfg.ca_file else "the system's CA store"
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"TLS to {where}: the broker's certificate was refused "
            f"({err.verify_message}); check that {trust} holds the CA that signed it "
            f"and that mqtt.host {cfg.host!r} is a name the certificate lists"
        )
    if isinstance(err, ssl.SSLError) or (cfg.tls and isinstance(err, ConnectionResetError)):
        # A plain MQTT listener resets a handshake it cannot parse: often the wrong port.
        return (
            f"TLS handshake with {where} failed: {_reason(err)} "
            "(is that a TLS listener? plain MQTT is usually port 1883, TLS 8883)"
        )
    if isinstance(err, OSError):
        return f"cannot connect to {where}: {_reason(err)}"
    return f"cannot connect to {where}"
