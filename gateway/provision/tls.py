"""A local CA and the broker's server certificate, for the broker's TLS listener.

The CA lives only in the shop: clients trust `ca.crt`, the CA's key stays in the 0700
provisioning folder, and the broker gets a certificate for the names and addresses the
clients use. Keys are ECDSA P-256: small, fast on a Pi, and what ESP32 mbedTLS does in
hardware.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ProvisionError
from gateway.provision.files import PRIVATE, PUBLIC, write_file

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime TLS clients (Apple, browsers) still accept
RENEW_DAYS = 30  # re-issue the server certificate when it expires sooner than this


@dataclass(frozen=True)
class CertPaths:
    """Where one certificate and its key go."""

    cert: Path
    key: Path


def ensure_ca(paths: CertPaths, site: str, now: datetime, owner: int | None) -> bool:
    """Create the site's CA once; True when it was created (an existing CA is kept)."""
    if paths.cert.exists() and paths.key.exists():
        _load_pair(paths)  # refuse a damaged pair now rather than at the next renewal
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"shopwatt {site} local CA")])
    cert = (
        _builder(name, name, key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_file(paths.key, _key_pem(key), PRIVATE)
    write_file(paths.cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC, owner)
    return True


def ensure_server_cert(
    ca: CertPaths,
    server: CertPaths,
    names: Sequence[str],
    now: datetime,
    owner: int | None,
    renew: bool = False,
) -> bool:
    """Issue the broker's certificate for `names` unless a current one exists; True if issued.

    Re-issued when the names change, the CA changed, it expires within RENEW_DAYS, or
    `renew` is set; the old key is never reused.
    """
    if not names:
        raise ProvisionError("--tls-name: give the host names or addresses clients connect to")
    ca_cert, ca_key = _load_pair(ca)
    wanted = _alt_names(names)
    if not renew and _still_good(server.cert, ca_cert, wanted, now):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_file(server.key, _key_pem(key), PRIVATE, owner)
    write_file(server.cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC, owner)
    return True


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    now: datetime,
    days: int,
) -> x509.CertificateBuilder:
    # Backdated an hour: a client whose clock is a little behind still accepts it.
    start = now.astimezone(UTC) - timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def is_host_name(name: str) -> bool:
    """Could `name` be a host name: not empty, and no space, '/', ':' or '@' (a URL, a port
    or a user typed with it)?"""
    return bool(name) and not any(c.isspace() or c in "/:@" for c in name)


def _alt_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            if not is_host_name(name):
                raise ProvisionError(
                    f"--tls-name {name!r}: not a host name or an IP address"
                ) from None
            out.append(x509.DNSName(name.lower()))
    return out


def _still_good(
    path: Path, ca_cert: x509.Certificate, wanted: list[x509.GeneralName], now: datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca_cert.subject
        and _signed_by(cert, ca_cert)
        and set(names) == set(wanted)
        and cert.not_valid_after_utc - now.astimezone(UTC) > timedelta(days=RENEW_DAYS)
    )


def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_pair(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    except (OSError, ValueError) as err:
        raise ProvisionError(
            f"{paths.cert} / {paths.key}: the local CA cannot be loaded ({err}); restore both "
            "from a backup, or delete both to create a new CA (every client then needs the new "
            "ca.crt)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ProvisionError(f"{paths.key} is not the key of {paths.cert}")
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
