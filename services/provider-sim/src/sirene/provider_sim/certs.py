"""Local CA, server certificate and APNs signing key for the simulator, created on demand."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertPaths:
    """Files in the cert dir. Clients need ``ca`` (trust) and ``apns_key`` (token auth)."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    apns_key: Path

    @classmethod
    def in_dir(cls, cert_dir: Path) -> CertPaths:
        return cls(
            ca=cert_dir / "ca.pem",
            ca_key=cert_dir / "ca-key.pem",
            server_cert=cert_dir / "server.pem",
            server_key=cert_dir / "server-key.pem",
            apns_key=cert_dir / "apns-key.p8",
        )


def ensure_certificates(cert_dir: Path) -> CertPaths:
    """Create whatever is missing or expiring in ``cert_dir``; never replace valid files.

    Files are written atomically, so concurrent starts at worst generate twice.
    """
    cert_dir.mkdir(parents=True, exist_ok=True)
    paths = CertPaths.in_dir(cert_dir)
    now = dt.datetime.now(dt.UTC)

    new_ca = not (paths.ca.exists() and paths.ca_key.exists()) or _expiring(paths.ca, now)
    if new_ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _make_ca(ca_key, now)
        _write(paths.ca_key, _private_pem(ca_key), secret=True)
        _write(paths.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        logger.info("created simulator CA %s", paths.ca)
    else:
        loaded = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{paths.ca_key} is not an EC private key")
        ca_key = loaded
        ca_cert = x509.load_pem_x509_certificate(paths.ca.read_bytes())

    if (
        new_ca
        or not (paths.server_cert.exists() and paths.server_key.exists())
        or _expiring(paths.server_cert, now)
    ):
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = _make_server_cert(server_key, ca_key, ca_cert, now)
        _write(paths.server_key, _private_pem(server_key), secret=True)
        _write(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
        logger.info("created simulator server certificate %s", paths.server_cert)

    if not paths.apns_key.exists():
        _write(paths.apns_key, _private_pem(ec.generate_private_key(ec.SECP256R1())), secret=True)
        logger.info("created APNs signing key %s", paths.apns_key)
    return paths


def _expiring(cert_file: Path, now: dt.datetime) -> bool:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc - _RENEW_BEFORE < now


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 is the format of Apple's .p8 files; PyJWT and aioapns read it as is.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sirene provider simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sirene Simulator Local CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _make_server_cert(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> x509.Certificate:
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # Under 398 days, so strict TLS clients (macOS, browsers) accept it too.
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600 if secret else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
