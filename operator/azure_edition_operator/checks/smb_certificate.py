"""SMB over QUIC server certificate: what was observed, and what it means for the user.

Pure: `evaluate_certificate` turns an observation (from the QUIC probe or, later, from the guest)
into a state, a condition reason and a message that says what to change. No I/O here, so the
rules are table-tested without a network.

Requirements checked (Microsoft's SMB over QUIC docs, see docs/capabilities.md): a DNS SAN for
the name clients use, the Server Authentication EKU, an ECDSA P-256+ or RSA 2048+ key, a
SHA-256+ signature, the validity period, and a chain to a root clients trust (``verify_chain``
against a trust bundle: the system roots by default, ``AEO_SMB_TRUST_BUNDLE`` to name another).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..api.v1alpha1 import CertificateState
from ..conditions import format_timestamp

SERVER_AUTH_EKU_OID = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
STRONG_SIGNATURE_HASHES = frozenset({"sha256", "sha384", "sha512"})
_MAPPING_HINT = (
    "update the SMB server certificate mapping (New-SmbServerCertificateMapping) to the new thumbprint"
)


class CertificateReason(StrEnum):
    """Reasons of the `SMBOverQUICCertificateValid` condition (docs/reference.md)."""

    VALID = "CertificateValid"
    EXPIRING_SOON = "CertificateExpiringSoon"
    EXPIRED = "CertificateExpired"
    INVALID = "CertificateInvalid"
    UNREACHABLE = "EndpointUnreachable"
    DISABLED = "SMBOverQUICDisabled"
    UNTRUSTED = "CertificateUntrusted"


_REASON_OF_STATE = {
    CertificateState.VALID: CertificateReason.VALID,
    CertificateState.EXPIRING_SOON: CertificateReason.EXPIRING_SOON,
    CertificateState.EXPIRED: CertificateReason.EXPIRED,
    CertificateState.INVALID: CertificateReason.INVALID,
    CertificateState.UNREACHABLE: CertificateReason.UNREACHABLE,
    CertificateState.DISABLED: CertificateReason.DISABLED,
    CertificateState.UNTRUSTED: CertificateReason.UNTRUSTED,
}


@dataclass(frozen=True)
class CertificateObservation:
    """The facts of one server certificate that the evaluation needs; pure data."""

    subject: str  # RFC 4514, e.g. "CN=fs01.contoso.com"
    issuer: str
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC; RFC 5280: the certificate is valid through this instant
    dns_names: tuple[str, ...]
    has_server_auth_eku: bool
    key_type: str  # "EC" | "RSA" | another algorithm name ("Ed25519", "DSA", ...)
    key_size: int  # bits; the curve size for EC
    signature_hash: str | None  # "sha256", "sha1", ...; None when the algorithm has no separate hash
    thumbprint: str  # SHA-1 of the DER, uppercase hex, as Windows shows it
    serial: str  # uppercase hex
    chain_subjects: tuple[str, ...] = ()  # the issuer certificates the server sent, in order
    trust_problem: str | None = None  # why the chain does not verify against the trust bundle; None: it does


@dataclass(frozen=True)
class EndpointUnreachable:
    """No certificate could be read: nothing answered, the port was closed, or the handshake failed."""

    host: str
    port: int
    error: str


@dataclass(frozen=True)
class CertificateVerdict:
    state: CertificateState
    reason: CertificateReason
    message: str
    days_remaining: int | None  # floor of days until notAfter; negative once expired
    problems: tuple[str, ...] = ()  # every reason the certificate is Invalid
    certificate: CertificateObservation | None = None

    @property
    def condition_status(self) -> bool:
        """`SMBOverQUICCertificateValid` status: True only when Valid (docs/reference.md: ExpiringSoon is False)."""
        return self.state is CertificateState.VALID


# ----------------------------------------------------------------------------- trust


def load_trust_bundle(path: str = "") -> tuple[x509.Certificate, ...]:
    """Roots from a PEM file: ``path`` (the setting smb_trust_bundle), else the system's CA file."""
    path = path or ssl.get_default_verify_paths().cafile
    if not path or not os.path.isfile(path):
        return ()
    with open(path, "rb") as handle:
        return tuple(x509.load_pem_x509_certificates(handle.read()))


def verify_chain(
    leaf: x509.Certificate, chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
    server_name: str,
) -> str | None:  # fmt: skip
    """Why a client trusting ``roots`` would refuse this chain for ``server_name``, or None.

    Checked at an instant inside the leaf's validity: dates and names are judged (and reported) by
    ``certificate_problems`` and the expiry rules; this answers only "does it chain to a trusted root".
    """
    if not roots:
        return "no trust bundle to verify it against (set AEO_SMB_TRUST_BUNDLE to a PEM file of roots)"
    moment = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(roots)))
            .time(moment)
            .build_server_verifier(x509.DNSName(server_name))
        )
        verifier.verify(leaf, list(chain))
    except verification.VerificationError as err:
        return f"its chain does not lead to a trusted root ({err})"
    except ValueError as err:  # a name cryptography cannot take as a DNS name, a malformed chain
        return f"its chain cannot be verified ({err})"
    return None


def observe_certificate(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate] = (),
    roots: Sequence[x509.Certificate] | None = None, server_name: str | None = None,
) -> CertificateObservation:  # fmt: skip
    """Extract the evaluation's facts from a parsed certificate (and the chain sent with it).

    With ``roots`` and ``server_name`` the chain is verified too (``trust_problem``).
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        has_server_auth_eku = ExtendedKeyUsageOID.SERVER_AUTH in eku
    except x509.ExtensionNotFound:
        # RFC 5280 would allow any purpose, but SMB over QUIC requires the EKU to be present.
        has_server_auth_eku = False
    key_type, key_size = _describe_key(certificate.public_key())
    try:
        algorithm = certificate.signature_hash_algorithm
        signature_hash = algorithm.name if isinstance(algorithm, hashes.HashAlgorithm) else None
    except UnsupportedAlgorithm:
        signature_hash = None
    return CertificateObservation(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        dns_names=dns_names,
        has_server_auth_eku=has_server_auth_eku,
        key_type=key_type,
        key_size=key_size,
        signature_hash=signature_hash,
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),
        serial=_hex_serial(certificate.serial_number),
        chain_subjects=tuple(issuer.subject.rfc4514_string() for issuer in chain),
        trust_problem=(
            verify_chain(certificate, chain, roots, server_name)
            if roots is not None and server_name is not None
            else None
        ),
    )


def evaluate_certificate(
    observation: CertificateObservation | EndpointUnreachable,
    server_name: str,
    expiry_warning_days: int,
    now: dt.datetime,
    smb_enabled: bool | None = None,
) -> CertificateVerdict:
    """Decide the SMB over QUIC certificate state.

    Precedence, first match wins: Disabled > Unreachable > Invalid > Expired > Untrusted >
    ExpiringSoon > Valid (an untrusted certificate is an outage: clients refuse it).
    Each step is what the user must fix first: a disabled feature makes the certificate moot;
    without a reachable endpoint nothing is known; an invalid certificate (wrong name, missing
    EKU, weak key or hash, not yet valid) is still wrong after a renewal from the same template,
    so it outranks expiry; only a sound certificate is judged by its dates.

    `smb_enabled` is the guest's EnableSMBQUIC when known (None: not known, e.g. probe only).
    ExpiringSoon starts when `now >= notAfter - expiry_warning_days` (inclusive, as
    cert-manager's renewBefore); Expired starts after notAfter (RFC 5280: notAfter is the last
    valid instant).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if expiry_warning_days < 0:
        raise ValueError("expiry_warning_days must not be negative")

    certificate = observation if isinstance(observation, CertificateObservation) else None
    days_remaining = (certificate.not_after - now) // dt.timedelta(days=1) if certificate else None

    def verdict(state: CertificateState, message: str, problems: tuple[str, ...] = ()) -> CertificateVerdict:
        return CertificateVerdict(
            state, _REASON_OF_STATE[state], message, days_remaining, problems, certificate
        )

    if smb_enabled is False:
        return verdict(
            CertificateState.DISABLED,
            f"SMB over QUIC is disabled on the server for {server_name} (EnableSMBQUIC is false); "
            "enable it with Set-SmbServerConfiguration -EnableSMBQUIC $true, or remove SMBOverQUIC "
            "from spec.capabilities",
        )
    if isinstance(observation, EndpointUnreachable):
        return verdict(
            CertificateState.UNREACHABLE,
            f"cannot read the SMB over QUIC certificate of {server_name} at "
            f"{_host_port(observation.host, observation.port)}: {observation.error}; check that the VM is "
            f"running, that UDP {observation.port} is allowed by its network security group and the Windows "
            "Firewall, and that SMB over QUIC is enabled (Get-SmbServerConfiguration: EnableSMBQUIC)",
        )
    assert certificate is not None and days_remaining is not None

    problems = certificate_problems(certificate, server_name, now)
    expiry_date = _date(certificate.not_after)
    if problems:
        also_expired = f"; it also expired {expiry_date}" if now > certificate.not_after else ""
        return verdict(
            CertificateState.INVALID,
            f"certificate for {server_name} (thumbprint {certificate.thumbprint}) is invalid: "
            f"{'; '.join(problems)}{also_expired}. Issue a certificate that fixes this and "
            f"{_MAPPING_HINT}",
            problems,
        )
    if now > certificate.not_after:
        days_ago = (now - certificate.not_after) // dt.timedelta(days=1)
        ago = "less than a day ago" if days_ago == 0 else f"{_days(days_ago)} ago"
        return verdict(
            CertificateState.EXPIRED,
            f"certificate for {server_name} expired {expiry_date} ({ago}); SMB over QUIC clients cannot "
            f"connect. Renew it and {_MAPPING_HINT}",
        )
    if certificate.trust_problem is not None:
        return verdict(
            CertificateState.UNTRUSTED,
            f"certificate for {server_name} (thumbprint {certificate.thumbprint}, issuer {certificate.issuer}) "
            f"is not trusted: {certificate.trust_problem}; SMB over QUIC clients refuse it. Issue it from a CA "
            "the clients trust (the operator checks against AEO_SMB_TRUST_BUNDLE or the system roots) and "
            f"{_MAPPING_HINT}",
        )
    if now >= certificate.not_after - dt.timedelta(days=expiry_warning_days):
        return verdict(
            CertificateState.EXPIRING_SOON,
            f"certificate for {server_name} expires {expiry_date} ({_days(days_remaining)}); "
            f"renew it and {_MAPPING_HINT}",
        )
    return verdict(
        CertificateState.VALID,
        f"certificate for {server_name} is valid until {expiry_date} ({_days(days_remaining)}), "
        f"thumbprint {certificate.thumbprint}",
    )


def certificate_problems(
    certificate: CertificateObservation, server_name: str, now: dt.datetime
) -> tuple[str, ...]:
    """Every reason the certificate cannot serve `server_name` regardless of its expiry date."""
    problems: list[str] = []
    if now < certificate.not_before:
        problems.append(
            f"not valid before {format_timestamp(certificate.not_before)} (notBefore is in the future)"
        )
    if not any(dns_name_matches(pattern, server_name) for pattern in certificate.dns_names):
        sans = ", ".join(certificate.dns_names) if certificate.dns_names else "none"
        problems.append(f"no DNS SAN matches {server_name} (DNS SANs: {sans})")
    if not certificate.has_server_auth_eku:
        problems.append(f"no Server Authentication EKU ({SERVER_AUTH_EKU_OID})")
    need_key = f"need ECDSA P-{MIN_EC_BITS}+ or RSA {MIN_RSA_BITS}+"
    if certificate.key_type == "RSA" and certificate.key_size < MIN_RSA_BITS:
        problems.append(f"weak key: RSA {certificate.key_size} bits ({need_key})")
    elif certificate.key_type == "EC" and certificate.key_size < MIN_EC_BITS:
        problems.append(f"weak key: EC {certificate.key_size} bits ({need_key})")
    elif certificate.key_type not in ("RSA", "EC"):
        problems.append(f"unsupported key type {certificate.key_type} ({need_key})")
    if certificate.signature_hash not in STRONG_SIGNATURE_HASHES:
        described = certificate.signature_hash or "an algorithm without a separate hash"
        problems.append(f"weak signature hash: signed with {described} (need SHA-256 or stronger)")
    return tuple(problems)


def dns_name_matches(pattern: str, server_name: str) -> bool:
    """RFC 6125 section 6.4 matching of one DNS SAN against the name clients use.

    Case-insensitive, trailing dots ignored. A wildcard is honoured only as the whole left-most
    label (`*.contoso.com`) and stands for exactly one label, so it matches `fs01.contoso.com`
    but neither `contoso.com` nor `a.fs01.contoso.com`. Partial wildcards (`fs*.contoso.com`,
    which RFC 6125 leaves to the client and the CA/Browser Forum forbids) never match.
    """
    pattern_labels = _normalise(pattern).split(".")
    name_labels = _normalise(server_name).split(".")
    if len(pattern_labels) != len(name_labels) or not all(name_labels) or "*" in server_name:
        return False
    first, *rest = pattern_labels
    if "*" in "".join(rest) or not all(rest):
        return False
    if first == "*":
        return bool(rest) and rest == name_labels[1:]  # a bare "*" names nothing
    return "*" not in first and pattern_labels == name_labels


def _normalise(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")  # U-labels to the A-labels certificates carry
    except UnicodeError:
        return name


def _describe_key(public_key: object) -> tuple[str, int]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC", public_key.curve.key_size
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(public_key).__name__, 0


def _hex_serial(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _days(count: int) -> str:
    return "1 day" if abs(count) == 1 else f"{count} days"


def _date(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).date().isoformat()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
