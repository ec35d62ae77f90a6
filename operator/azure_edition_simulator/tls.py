"""The simulator's own certificate authority and the HTTPS serving certificate for 127.0.0.1/localhost.

Clients trust the CA file (``connection_verify=<ca>`` or ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``), exactly
as they would trust a corporate proxy's CA, so the real SDKs talk to the simulator over verified TLS.
The CA and its key are kept in the state directory so a restarted simulator is still trusted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "ca.pem"
CA_CERT_CRT_FILE = "ca.crt"
CA_KEY_FILE = "ca-key.pem"
CA_BUNDLE_FILE = "ca-bundle.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

# System trust stores, used to build a bundle "simulator CA + public CAs" for SSL_CERT_FILE.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the files a server and its clients need."""

    ca_cert: Path
    ca_bundle: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the HTTPS listener."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.server_cert), str(self.server_key))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts only the simulator CA (for the control client)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Azure Edition ARM simulator CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server_cert(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _system_bundle() -> bytes:
    paths = [ssl.get_default_verify_paths().cafile, *_SYSTEM_BUNDLES]
    try:
        import certifi  # optional: present wherever `requests` is

        paths.append(certifi.where())
    except ImportError:
        pass
    for candidate in paths:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


def ensure_tls_material(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsMaterial:
    """Load the CA from ``directory`` or create it, and (re)issue the serving certificate.

    The CA survives restarts; the serving certificate is re-issued on every start because it is cheap and
    so never expires under a long-running demo.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
    if ca_path.is_file() and ca_key_path.is_file():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not an EC private key")
        ca_key = loaded
    else:
        ca_cert, ca_key = _new_ca()
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_private(ca_key_path, _key_pem(ca_key))
    # The same CA under the name Kubernetes configmaps conventionally use.
    (directory / CA_CERT_CRT_FILE).write_bytes(ca_path.read_bytes())
    server_cert, server_key = _new_server_cert(ca_cert, ca_key, hosts)
    server_path, server_key_path = directory / SERVER_CERT_FILE, directory / SERVER_KEY_FILE
    server_path.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(server_key_path, _key_pem(server_key))
    bundle_path = directory / CA_BUNDLE_FILE
    bundle_path.write_bytes(ca_path.read_bytes() + b"\n" + _system_bundle())
    return TlsMaterial(
        ca_cert=ca_path, ca_bundle=bundle_path, server_cert=server_path, server_key=server_key_path
    )
