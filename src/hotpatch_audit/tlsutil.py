"""A throw-away certificate authority and server certificate for local HTTPS (the Resource Graph emulator).

azure-core's bearer-token policy refuses plain HTTP, so a local endpoint needs TLS that a client can
trust through a CA bundle (`connection_verify=<ca.pem>`, `REQUESTS_CA_BUNDLE`). Everything is made
with the `cryptography` package; nothing here is meant for production trust.

Files written to the folder: `ca.pem` (the CA certificate: the bundle clients trust), `ca-key.pem`,
`server.pem` (server certificate followed by the CA certificate) and `server-key.pem`. Existing files
are reused while they are valid for at least another day and cover the requested host names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a server certificate (chain), its private key and the CA bundle that trusts it."""

    cert: Path
    key: Path
    ca_bundle: Path


def ensure_server_cert(folder: Path | str, hosts: Iterable[str] = DEFAULT_HOSTS, *,
                       valid_days: int = 30) -> TlsFiles:
    """Return a CA + server certificate for `hosts` in `folder`, creating (or renewing) them as needed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = _unique([*DEFAULT_HOSTS, *hosts])
    files = TlsFiles(folder / CERT_FILE, folder / KEY_FILE, folder / CA_FILE)
    if _reusable(files, wanted):
        return files
    return write_server_cert(folder, wanted, valid_days=valid_days)


def write_server_cert(folder: Path | str, hosts: Iterable[str] = DEFAULT_HOSTS, *,
                      valid_days: int = 30) -> TlsFiles:
    """Create a new self-signed CA and a server certificate for `hosts` (IP addresses and DNS names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hotpatch-audit"),
        x509.NameAttribute(NameOID.COMMON_NAME, "hotpatch-audit local emulator CA"),
    ])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in _unique(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _first_dns(hosts))]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    files = TlsFiles(folder / CERT_FILE, folder / KEY_FILE, folder / CA_FILE)
    _write(folder / CA_KEY_FILE, ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()), private=True)
    _write(files.key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
           private=True)
    _write(files.ca_bundle, ca_cert.public_bytes(pem))
    _write(files.cert, cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return files


def _reusable(files: TlsFiles, hosts: list[str]) -> bool:
    if not (files.cert.is_file() and files.key.is_file() and files.ca_bundle.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificates(files.cert.read_bytes())[0]
        ca = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
        serialization.load_pem_private_key(files.key.read_bytes(), password=None)
        if cert.issuer != ca.subject:
            return False
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        if cert.not_valid_after_utc < soon or ca.not_valid_after_utc < soon:
            return False
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    return all(str(_normal(h)) in have for h in hosts)


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _unique(hosts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for h in hosts:
        if h and h not in out and h not in ("0.0.0.0", "::"):  # noqa: S104 (wildcard binds get no SAN)
            out.append(h)
    return out


def _first_dns(hosts: Iterable[str]) -> str:
    for h in hosts:
        try:
            ipaddress.ip_address(h)
        except ValueError:
            return h
    return "localhost"


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)
