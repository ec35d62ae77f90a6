"""SMB over QUIC certificate rotation from a declared source: what to do, decided without I/O.

The source is a ``kubernetes.io/tls`` Secret (cert-manager's shape: ``tls.crt`` is the leaf then its
chain, ``tls.key`` its private key). ``source_certificate`` reads it, ``source_problems`` says why it
cannot serve ``serverName``, ``plan_rotation`` compares it with what the guest reported (its
LocalMachine\\My store and its SMB server certificate mappings) and says which steps are missing:
import the PFX, map it (``New-``/``Set-SmbServerCertificateMapping``), remove the mappings of the
certificate it replaces. ``pfx_of`` packs the PFX that travels as a protected parameter.

Nothing here logs or formats key material: messages name Secret keys and thumbprints, never values, and
the dataclass holding the PEM keeps it out of ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from .smb_certificate import certificate_problems, dns_name_matches, observe_certificate
from .smb_guest import GuestState, StoredCertificate

TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
# PBKDF2 rounds of the PFX: the password is random and used once, so the count only has to be what
# Windows' Import-PfxCertificate accepts for AES-256 PFX files (Windows Server 2019 and later).
_PFX_KDF_ROUNDS = 2048


class SecretProblem(ValueError):
    """The Secret cannot be used; ``str`` names the Secret key and the rule, never the value."""


@dataclass(frozen=True)
class SourceCertificate:
    """The certificate a source offers: facts in the clear, key material out of ``repr``."""

    thumbprint: str
    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    cert_pem: bytes = field(default=b"", repr=False)
    key_pem: bytes = field(default=b"", repr=False)
    chain_pem: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class RotationPlan:
    """The steps still missing for the guest to serve ``thumbprint`` under ``server_name``."""

    server_name: str
    thumbprint: str
    import_pfx: bool
    map_certificate: bool
    replaced: tuple[str, ...] = ()  # thumbprints whose mappings go once the new one is mapped

    @property
    def empty(self) -> bool:
        return not (self.import_pfx or self.map_certificate)


def source_certificate(data: Mapping[str, str]) -> SourceCertificate:
    """Parse a ``kubernetes.io/tls`` Secret's ``data`` (base64 values, as the API returns them)."""
    pem = {k: _decoded(data, k) for k in (TLS_CERT_KEY, TLS_KEY_KEY)}
    try:
        certificates = x509.load_pem_x509_certificates(pem[TLS_CERT_KEY])
    except ValueError:
        raise SecretProblem(f"key '{TLS_CERT_KEY}' is not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(pem[TLS_KEY_KEY], password=None)
    except (ValueError, TypeError):
        raise SecretProblem(f"key '{TLS_KEY_KEY}' is not an unencrypted PEM private key") from None
    leaf = certificates[0]
    if key.public_key().public_bytes(*_SPKI) != leaf.public_key().public_bytes(*_SPKI):
        raise SecretProblem(
            f"key '{TLS_KEY_KEY}' does not belong to the first certificate of '{TLS_CERT_KEY}'"
        )
    observed = observe_certificate(leaf)
    return SourceCertificate(
        thumbprint=observed.thumbprint,
        not_before=observed.not_before,
        not_after=observed.not_after,
        dns_names=observed.dns_names,
        cert_pem=leaf.public_bytes(serialization.Encoding.PEM),
        key_pem=pem[TLS_KEY_KEY],
        chain_pem=tuple(c.public_bytes(serialization.Encoding.PEM) for c in certificates[1:]),
    )


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _decoded(data: Mapping[str, str], name: str) -> bytes:
    if not data.get(name):
        raise SecretProblem(
            f"has no '{name}' key (a kubernetes.io/tls Secret has '{TLS_CERT_KEY}' and '{TLS_KEY_KEY}')"
        )
    try:
        return base64.b64decode(data[name], validate=True)
    except (binascii.Error, ValueError):
        raise SecretProblem(f"key '{name}' is not base64") from None


def source_problems(source: SourceCertificate, server_name: str, now: dt.datetime) -> tuple[str, ...]:
    """Why this certificate must not be mapped for ``server_name`` (empty: it may).

    The same rules the probe applies to what clients get (``certificate_problems``), plus expiry: mapping
    an expired certificate would turn a warning into an outage."""
    leaf = x509.load_pem_x509_certificate(source.cert_pem)
    problems = list(certificate_problems(observe_certificate(leaf), server_name, now))
    if now > source.not_after:
        problems.append(f"it expired {source.not_after.date().isoformat()}")
    return tuple(problems)


def plan_rotation(source: SourceCertificate, server_name: str, guest: GuestState | None) -> RotationPlan:
    """What is missing for ``guest`` to map ``source`` under ``server_name``.

    ``guest`` None (never looked inside): everything, importing is idempotent. A certificate in the store
    without its private key is imported again (SMB needs the key)."""
    thumbprint = source.thumbprint
    stored = guest.stored(thumbprint) if guest is not None else None
    mapping = guest.mapping_for(server_name) if guest is not None else None
    map_needed = mapping is None or mapping.thumbprint != thumbprint
    replaced = (mapping.thumbprint,) if mapping is not None and map_needed else ()
    return RotationPlan(
        server_name=server_name,
        thumbprint=thumbprint,
        import_pfx=stored is None or not stored.has_private_key,
        map_certificate=map_needed,
        replaced=replaced,
    )


def pfx_of(source: SourceCertificate, password: bytes) -> bytes:
    """The PFX (PKCS#12, AES-256-CBC, HMAC-SHA256) Import-PfxCertificate reads: leaf, key and chain."""
    key = serialization.load_pem_private_key(source.key_pem, password=None)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(_PFX_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(
        name=source.thumbprint.encode(),
        key=key,  # type: ignore[arg-type]  # RSA or EC: what source_certificate accepted
        cert=x509.load_pem_x509_certificate(source.cert_pem),
        cas=[x509.load_pem_x509_certificate(c) for c in source.chain_pem] or None,
        encryption_algorithm=encryption,
    )


def rotation_message(plan: RotationPlan, source_name: str, not_after: dt.datetime) -> str:
    """The Event of a rotation: which certificate now serves which name, from where, replacing what."""
    replaced = f", replacing {', '.join(plan.replaced)}" if plan.replaced else ""
    return (
        f"SMB over QUIC now serves certificate {plan.thumbprint} for {plan.server_name} (from {source_name}, "
        f"valid until {not_after.date().isoformat()}){replaced}"
    )


# ----------------------------------------------------------------------------- Key Vault (the guest's store)

KEY_VAULT_READER_ROLE = "Key Vault Secrets User"
_DENIED_MARKERS = (
    "403",
    "forbidden",
    "not authorized",
    "authorization",
    "no system-assigned managed identity",
)


def newest_in_store(guest: GuestState, server_name: str, now: dt.datetime) -> StoredCertificate | None:
    """The certificate of LocalMachine\\My to serve ``server_name``: with its private key, a DNS name that
    matches, valid now; the one valid longest (then the newest notBefore). None: no such certificate."""
    usable = [
        c for c in guest.store
        if c.has_private_key and c.not_before is not None and c.not_after is not None
        and c.not_before <= now <= c.not_after and any(dns_name_matches(n, server_name) for n in c.dns_names)
    ]  # fmt: skip
    return max(usable, key=lambda c: (c.not_after, c.not_before), default=None)


def plan_store_rotation(chosen: StoredCertificate, server_name: str, guest: GuestState) -> RotationPlan:
    """Map ``chosen`` (already in the store) for ``server_name``, replacing what the mapping named."""
    mapping = guest.mapping_for(server_name)
    map_needed = mapping is None or mapping.thumbprint != chosen.thumbprint
    replaced = (mapping.thumbprint,) if mapping is not None and map_needed else ()
    return RotationPlan(
        server_name, chosen.thumbprint, import_pfx=False, map_certificate=map_needed, replaced=replaced
    )


def vault_host(secret_url: str) -> str:
    """The vault of a secret URL (``https://<vault host>/secrets/<name>``), as messages name it."""
    return secret_url.split("://", 1)[-1].split("/", 1)[0]


def extension_problem(
    level: str | None, message: str | None, secret_url: str, principal: str | None
) -> str | None:
    """What the Key Vault extension's status means for the user (None: it works).

    A refusal (403, no identity) names the role and the vault to grant it on, and the identity, whatever the
    extension's own wording; any other error is passed on."""
    if (level or "").lower() != "error":
        return None
    text = (message or "").strip()
    vault = vault_host(secret_url)
    if principal is None:
        return (
            f"the Key Vault extension cannot read {secret_url}: the VM has no system-assigned managed identity "
            "yet (the operator adds it; if this stays, check the VM's identity)"
        )
    if any(marker in text.lower() for marker in _DENIED_MARKERS):
        return (
            f"the VM's managed identity (principal {principal}) may not read {secret_url}: grant it the role "
            f"'{KEY_VAULT_READER_ROLE}' on the Key Vault {vault} (az role assignment create --role "
            f"'{KEY_VAULT_READER_ROLE}' --assignee-object-id {principal} --assignee-principal-type "
            f"ServicePrincipal --scope <the vault's resource ID>); the extension reported: {text[:300]}"
        )
    return f"the Key Vault extension reports an error for {secret_url}: {text[:300]}"


def reachability_note(server_name: str, fqdn: str) -> str:
    """What the SMB condition says of the public IP's DNS name: clients need ``server_name`` (the name the
    certificate carries) to resolve to the VM; Azure's name does when it is that name, else a CNAME can."""
    if server_name.lower().rstrip(".") == fqdn.lower().rstrip("."):
        return f"; clients reach it by name: {fqdn} is the public IP's DNS name"
    return f"; the public IP's DNS name is {fqdn}: point {server_name} at it (a CNAME) so clients reach the VM by the certificate's name"
