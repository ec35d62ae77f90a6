"""Test X.509 certificates for simulated guests' SMB over QUIC endpoints.

A small two-level test PKI (self-signed root -> issuing CA -> server certificate) whose leaf
certificates the tests shape at will: dates in the past or future, wrong names, missing Server
Authentication EKU, weak keys, SHA-1 signatures. The simulator's control API takes a
`CertificateSpec` as JSON (`CertificateSpec.from_dict`), so the spec is strict about its keys.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-1024"]
SignatureHash = Literal["sha256", "sha384", "sha1"]

KEY_TYPES: tuple[str, ...] = get_args(KeyType)
SIGNATURE_HASHES: tuple[str, ...] = get_args(SignatureHash)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Backdating for certificates whose notBefore the caller leaves open: CAs do the same so that a
# client whose clock is a little behind does not see a "not yet valid" certificate.
_DEFAULT_BACKDATE = dt.timedelta(hours=1)
# An already-expired certificate without an explicit notBefore is given a plausible past life.
_DEFAULT_EXPIRED_LIFETIME = dt.timedelta(days=90)

_SPEC_KEYS = frozenset(
    {
        "commonName",
        "dnsNames",
        "notBefore",
        "notAfter",
        "validDays",
        "expiresInDays",
        "serverAuthEku",
        "keyType",
        "signatureHash",
    }
)


@dataclass(frozen=True)
class CertificateSpec:
    """What the leaf certificate of a simulated SMB over QUIC server should look like."""

    common_name: str
    dns_names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    server_auth_eku: bool = True
    key_type: KeyType = "ec-p256"
    signature_hash: SignatureHash = "sha256"

    def __post_init__(self) -> None:
        # Accept a list from callers but keep the frozen dataclass hashable and immutable.
        object.__setattr__(self, "dns_names", tuple(self.dns_names))
        if not self.common_name:
            raise ValueError("commonName must not be empty")
        for name, value in (("notBefore", self.not_before), ("notAfter", self.not_after)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware (e.g. 2026-01-01T00:00:00Z)")
        if self.not_after <= self.not_before:
            raise ValueError(f"notAfter ({self.not_after.isoformat()}) must be after notBefore")
        if self.key_type not in KEY_TYPES:
            raise ValueError(f"keyType {self.key_type!r} is not one of {', '.join(KEY_TYPES)}")
        if self.signature_hash not in SIGNATURE_HASHES:
            raise ValueError(
                f"signatureHash {self.signature_hash!r} is not one of {', '.join(SIGNATURE_HASHES)}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, now: dt.datetime | None = None) -> CertificateSpec:
        """Build a spec from the control API's JSON (camelCase keys).

        Exactly one of `notAfter` (ISO 8601), `validDays` (lifetime from notBefore) or
        `expiresInDays` (from now; negative means already expired) sets the end of validity.
        `notBefore` defaults to one hour ago, or for a certificate that ends before that, to
        90 days before its end. `dnsNames` defaults to `[commonName]`.
        """
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise ValueError(f"unknown certificate spec keys: {', '.join(sorted(unknown))}")
        now = now or dt.datetime.now(dt.UTC)
        common_name = _require_str(data, "commonName")
        dns_names = data.get("dnsNames", [common_name])
        if not isinstance(dns_names, list | tuple) or not all(isinstance(n, str) for n in dns_names):
            raise ValueError("dnsNames must be a list of strings")

        end_keys = [key for key in ("notAfter", "validDays", "expiresInDays") if key in data]
        if len(end_keys) != 1:
            raise ValueError("give exactly one of notAfter, validDays, expiresInDays")
        explicit_not_before = _parse_time(data["notBefore"], "notBefore") if "notBefore" in data else None
        default_not_before = now - _DEFAULT_BACKDATE
        end_key = end_keys[0]
        if end_key == "validDays":
            not_before = explicit_not_before or default_not_before
            not_after = not_before + dt.timedelta(days=_require_number(data, "validDays"))
        else:
            if end_key == "notAfter":
                not_after = _parse_time(data["notAfter"], "notAfter")
            else:
                not_after = now + dt.timedelta(days=_require_number(data, "expiresInDays"))
            not_before = explicit_not_before or (
                default_not_before
                if not_after > default_not_before
                else not_after - _DEFAULT_EXPIRED_LIFETIME
            )

        server_auth_eku = data.get("serverAuthEku", True)
        if not isinstance(server_auth_eku, bool):
            raise ValueError("serverAuthEku must be true or false")
        return cls(
            common_name=common_name,
            dns_names=tuple(dns_names),
            not_before=not_before,
            not_after=not_after,
            server_auth_eku=server_auth_eku,
            key_type=data.get("keyType", "ec-p256"),
            signature_hash=data.get("signatureHash", "sha256"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form; `from_dict(spec.to_dict()) == spec`."""
        return {
            "commonName": self.common_name,
            "dnsNames": list(self.dns_names),
            "notBefore": _format_time(self.not_before),
            "notAfter": _format_time(self.not_after),
            "serverAuthEku": self.server_auth_eku,
            "keyType": self.key_type,
            "signatureHash": self.signature_hash,
        }


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate with its private key and issuer chain, all PEM text."""

    cert_pem: str
    key_pem: str
    chain_pem: str  # issuing CA first, then the root
    thumbprint: str  # SHA-1 of the DER, uppercase hex: what certlm.msc and the SMB mapping show
    not_after: dt.datetime
    subject: str
    spec: CertificateSpec | None = field(default=None, compare=False)

    @property
    def fullchain_pem(self) -> str:
        """Leaf followed by its issuers: what a TLS server sends."""
        return self.cert_pem + self.chain_pem


class CertificateAuthority:
    """A self-signed root and an issuing CA below it; the issuing CA signs the leaves.

    Both CA keys are ECDSA P-256 (fast to generate). The root's name is unique per instance so
    that certificates of two authorities can never be confused.
    """

    def __init__(
        self,
        name: str = "Azure Edition Simulator Test",
        *,
        now: dt.datetime | None = None,
        root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        """``root``: an existing CA (certificate, key) to issue below instead of a new one."""
        now = now or dt.datetime.now(dt.UTC)
        suffix = secrets.token_hex(4)
        if root is not None:
            self.root_certificate, self._root_key = root
            root_name = self.root_certificate.subject
        else:
            self._root_key = ec.generate_private_key(ec.SECP256R1())
            root_name = _name(f"{name} Root CA {suffix}")
            self.root_certificate = _ca_builder(
                subject=root_name,
                issuer=root_name,
                public_key=self._root_key.public_key(),
                issuer_public_key=self._root_key.public_key(),
                not_before=now - dt.timedelta(days=3650),
                not_after=now + dt.timedelta(days=3650),
                path_length=1,
            ).sign(self._root_key, hashes.SHA256())

        self._issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing_certificate = _ca_builder(
            subject=_name(f"{name} Issuing CA {suffix}"),
            issuer=root_name,
            public_key=self._issuing_key.public_key(),
            issuer_public_key=self._root_key.public_key(),
            not_before=now - dt.timedelta(days=3650),
            not_after=now + dt.timedelta(days=3650),
            path_length=0,
        ).sign(self._root_key, hashes.SHA256())

    @property
    def root_pem(self) -> str:
        return _pem(self.root_certificate)

    @property
    def chain_pem(self) -> str:
        """Issuer chain of every leaf: the issuing CA, then the root."""
        return _pem(self.issuing_certificate) + self.root_pem

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        """Sign a leaf certificate shaped by `spec` with the issuing CA."""
        key = _generate_key(spec.key_type)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(spec.common_name))
            .issuer_name(self.issuing_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(spec.not_before)
            .not_valid_after(spec.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            # Without serverAuth the certificate carries clientAuth only: the realistic mistake of
            # enrolling from a client/user template, which SMB over QUIC clients refuse.
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        ExtendedKeyUsageOID.SERVER_AUTH
                        if spec.server_auth_eku
                        else ExtendedKeyUsageOID.CLIENT_AUTH
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._issuing_key.public_key()),
                critical=False,
            )
        )
        if spec.dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in spec.dns_names]), critical=False
            )
        if spec.signature_hash == "sha1":
            certificate = _sign_ecdsa_sha1(builder, self._issuing_key)
        else:
            algorithm = hashes.SHA384() if spec.signature_hash == "sha384" else hashes.SHA256()
            certificate = builder.sign(self._issuing_key, algorithm)

        return IssuedCertificate(
            cert_pem=_pem(certificate),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii"),
            chain_pem=self.chain_pem,
            thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),
            not_after=certificate.not_valid_after_utc,
            subject=certificate.subject.rfc4514_string(),
            spec=spec,
        )


_DEFAULT: list[CertificateAuthority] = []


def default_authority() -> CertificateAuthority:
    """One authority per process: generating CA keys for every certificate would be waste."""
    if not _DEFAULT:
        _DEFAULT.append(CertificateAuthority())
    return _DEFAULT[0]


def use_default_authority(authority: CertificateAuthority) -> None:
    """Issue this process's guest certificates from ``authority`` (a simulator process, at start)."""
    _DEFAULT[:] = [authority]


def issue_certificate(
    spec: CertificateSpec, *, authority: CertificateAuthority | None = None
) -> IssuedCertificate:
    """Issue a leaf certificate for `spec` from `authority` (default: the process-wide one)."""
    return (authority or default_authority()).issue(spec)


# --- helpers -------------------------------------------------------------------------------------


def _generate_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    bits = int(key_type.removeprefix("rsa-"))
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_builder(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_public_key: ec.EllipticCurvePublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False)
    )


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any, key: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be an ISO 8601 string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} is not ISO 8601: {exc}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{key} {value!r} needs a timezone (e.g. a trailing Z)")
    return parsed


def _require_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is required and must be a non-empty string")
    return value


def _require_number(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number of days")
    return value


# --- SHA-1 signatures ------------------------------------------------------------------------------
#
# cryptography >= 45 refuses SHA-1 in CertificateBuilder.sign ("Hash algorithm 'sha1' not
# supported for signatures"), but its private keys still sign arbitrary bytes with SHA-1 through
# the public `sign()` API. A SHA-1 certificate is therefore built as a SHA-256 one, its
# TBSCertificate's signature AlgorithmIdentifier swapped for ecdsa-with-SHA1, re-signed with
# SHA-1 and re-wrapped. Only the outermost DER layers are touched (three TLVs), and the result
# is parsed back and its signature verified before use, so a mistake cannot go unnoticed.

# AlgorithmIdentifier DER for ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and ecdsa-with-SHA1
# (1.2.840.10045.4.1); RFC 5758 and RFC 3279: no parameters.
_ECDSA_SHA256_ALGORITHM = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1_ALGORITHM = bytes.fromhex("300906072a8648ce3d0401")


def _sign_ecdsa_sha1(builder: x509.CertificateBuilder, issuer_key: PrivateKey) -> x509.Certificate:
    if not isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        raise TypeError("SHA-1 test certificates are only issued by an ECDSA issuing CA")
    template = builder.sign(issuer_key, hashes.SHA256())
    version, serial, algorithm, *rest = _der_children(template.tbs_certificate_bytes)
    if algorithm != _ECDSA_SHA256_ALGORITHM:
        raise ValueError("unexpected TBSCertificate layout; cannot re-sign with SHA-1")
    tbs = _der_tlv(0x30, b"".join([version, serial, _ECDSA_SHA1_ALGORITHM, *rest]))
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    der = _der_tlv(0x30, tbs + _ECDSA_SHA1_ALGORITHM + _der_tlv(0x03, b"\x00" + signature))
    certificate = x509.load_der_x509_certificate(der)
    issuer_key.public_key().verify(
        certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hashes.SHA1())
    )
    if not isinstance(certificate.signature_hash_algorithm, hashes.SHA1):
        raise ValueError("re-signed certificate does not report SHA-1")
    return certificate


def _der_children(der: bytes) -> list[bytes]:
    """The complete TLVs inside one DER constructed value (definite lengths only, as DER requires)."""
    header, length = _der_header(der, 0)
    content, children, offset = der[header : header + length], [], 0
    while offset < len(content):
        child_header, child_length = _der_header(content, offset)
        end = offset + child_header + child_length
        children.append(content[offset:end])
        offset = end
    return children


def _der_header(der: bytes, offset: int) -> tuple[int, int]:
    """(header size, content length) of the TLV at `offset`; single-byte tags only."""
    first = der[offset + 1]
    if first < 0x80:
        return 2, first
    count = first & 0x7F
    return 2 + count, int.from_bytes(der[offset + 2 : offset + 2 + count], "big")


def _der_tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content
