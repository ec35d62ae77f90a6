"""Key Vault's data plane for certificates: versions, policies with an auto-renew action, the PFX secret.

Served on the simulator's HTTPS origin under ``/keyvault/<vault>`` (a vault URL
``https://127.0.0.1:<port>/keyvault/<vault>``; azure-keyvault-certificates takes it as ``vault_url``
with ``verify_challenge_resource=False``, since the challenge names Key Vault's real audience). As on
Azure (learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses):

* a request without a token gets 401 and the challenge ``Bearer authorization="<authority>/<tenant>",
  resource="https://vault.azure.net"``; tokens must carry that audience (identity.py mints them for it);
* access is Azure RBAC: the simulator's own principal is the vault's administrator; any other principal
  (a VM's managed identity) needs a role granted through the control API (``Key Vault Secrets User`` to
  read a certificate's secret, which is what the Key Vault VM extension fetches); 403 ``Forbidden``
  otherwise;
* ``create`` issues a certificate for the policy's subject and DNS names (from the simulator's guest CA,
  standing for an integrated CA), ``import`` takes a PFX (base64) or PEM; each is a new version; the
  ``/secrets/<name>`` of a certificate is its PFX (``application/x-pkcs12``, base64);
* ``renew`` (control API) is a lifetime action firing: a new version from the same policy; ``renew_due``
  fires it by the policy's own trigger (days before expiry, or a share of the lifetime) as time passes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

VAULT_AUDIENCE = "https://vault.azure.net"
SECRETS_USER = "Key Vault Secrets User"
CERTIFICATES_OFFICER = "Key Vault Certificates Officer"
READ_ROLES = (SECRETS_USER, CERTIFICATES_OFFICER, "Key Vault Administrator")


class VaultError(Exception):
    """A Key Vault error answer: ``{"error": {"code", "message"}}`` with a status (and headers)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def new_vault(name: str) -> dict[str, Any]:
    return {"name": name, "certificates": {}, "roleAssignments": []}


def grant(vault: dict[str, Any], principal_id: str, role: str) -> None:
    """A role assignment on the vault's scope (control API: what ``az role assignment create`` does)."""
    entry = {"principalId": principal_id, "role": role}
    if entry not in vault["roleAssignments"]:
        vault["roleAssignments"].append(entry)


def revoke(vault: dict[str, Any], principal_id: str) -> None:
    vault["roleAssignments"] = [a for a in vault["roleAssignments"] if a["principalId"] != principal_id]


def can_read(vault: dict[str, Any], principal_id: str) -> bool:
    return any(a["principalId"] == principal_id and a["role"] in READ_ROLES for a in vault["roleAssignments"])


# --- authentication --------------------------------------------------------------------------------------


def caller(identity: Any, authorization: str | None, tenant_id: str, authority: str) -> str:
    """The caller's object id, or the 401 challenge Key Vault answers without a valid token."""
    challenge = {
        "WWW-Authenticate": f'Bearer authorization="{authority}/{tenant_id}", resource="{VAULT_AUDIENCE}"'
    }
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VaultError(
            401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", challenge
        )
    try:
        claims = jwt.decode(
            token.strip(), identity.token_key.private_key.public_key(), algorithms=["RS256"],
            audience=[VAULT_AUDIENCE, VAULT_AUDIENCE + "/"], leeway=60,
        )  # fmt: skip
    except jwt.InvalidAudienceError:
        raise VaultError(401, "Unauthorized", f"AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}.",
                         challenge) from None  # fmt: skip
    except jwt.PyJWTError as err:
        raise VaultError(401, "Unauthorized", f"AKV10032: Invalid token: {err}", challenge) from None
    return str(claims.get("oid"))


# --- certificates ----------------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _x5t(cert: x509.Certificate) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")


def thumbprint_of(version: dict[str, Any]) -> str:
    """Windows' thumbprint (SHA-1, upper-case hex) of a stored version."""
    return (
        x509.load_pem_x509_certificate(version["certPem"].encode()).fingerprint(hashes.SHA1()).hex().upper()
    )


def default_policy(subject: str = "", dns_names: list[str] | None = None) -> dict[str, Any]:
    return {
        "key_props": {"exportable": True, "kty": "EC", "crv": "P-256", "reuse_key": False},
        "secret_props": {"contentType": "application/x-pkcs12"},
        "x509_props": {
            "subject": subject,
            "sans": {"dns_names": dns_names or []},
            "validity_months": 12,
            "ekus": ["1.3.6.1.5.5.7.3.1"],
        },
        "lifetime_actions": [{"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}],
        "issuer": {"name": "Self"},
        "attributes": {"enabled": True, "created": _now(), "updated": _now()},
    }


def _version_from(cert: x509.Certificate, key_pem: str, chain: list[x509.Certificate]) -> dict[str, Any]:
    return {
        "version": secrets.token_hex(16),
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "keyPem": key_pem,
        "chainPem": "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
        "created": _now(),
        "nbf": int(cert.not_valid_before_utc.timestamp()),
        "exp": int(cert.not_valid_after_utc.timestamp()),
    }


def issue_version(policy: dict[str, Any]) -> dict[str, Any]:
    """A new version for ``policy``: its subject's CN and DNS names, its validity in months."""
    from . import certs

    x509_props = policy.get("x509_props") or {}
    subject = str(x509_props.get("subject") or "")
    common = (
        next((p[3:] for p in subject.split(",") if p.strip().upper().startswith("CN=")), "") or "certificate"
    )
    names = list((x509_props.get("sans") or {}).get("dns_names") or []) or [common]
    months = int(x509_props.get("validity_months") or 12)
    spec = certs.CertificateSpec.from_dict(
        {"commonName": common.strip(), "dnsNames": names, "validDays": 30 * months}
    )
    issued = certs.issue_certificate(spec)
    leaf = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode()) if issued.chain_pem else []
    return _version_from(leaf, issued.key_pem, chain)


def import_version(body: dict[str, Any]) -> dict[str, Any]:
    """``import``: ``value`` is a base64 PFX (with ``pwd``) or PEM text (key and certificates)."""
    value = str(body.get("value") or "")
    if "-----BEGIN" in value:
        certificates = x509.load_pem_x509_certificates(value.encode())
        key = serialization.load_pem_private_key(value.encode(), password=None)
    else:
        try:
            pfx = base64.b64decode(value, validate=True)
            key, leaf, extra = pkcs12.load_key_and_certificates(pfx, (body.get("pwd") or "").encode() or None)
        except (binascii.Error, ValueError):
            raise VaultError(400, "BadParameter", "Invalid certificate or password.") from None
        if leaf is None:
            raise VaultError(400, "BadParameter", "The PFX holds no certificate.")
        certificates = [leaf, *extra]
    if key is None:
        raise VaultError(400, "BadParameter", "Private key is required to import a certificate.")
    key_pem = key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _version_from(certificates[0], key_pem, certificates[1:])


def pfx_secret(version: dict[str, Any]) -> str:
    """The certificate's secret: leaf, key and chain as an unencrypted PFX, base64 (as Key Vault serves it)."""
    key = serialization.load_pem_private_key(version["keyPem"].encode(), password=None)
    chain = x509.load_pem_x509_certificates(version["chainPem"].encode()) if version["chainPem"] else []
    pfx = pkcs12.serialize_key_and_certificates(
        None, key, x509.load_pem_x509_certificate(version["certPem"].encode()),  # type: ignore[arg-type]
        chain or None, serialization.NoEncryption(),
    )  # fmt: skip
    return base64.b64encode(pfx).decode()


def bundle(vault_url: str, name: str, entry: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """A CertificateBundle (GET /certificates/{name}/{version})."""
    cert = x509.load_pem_x509_certificate(version["certPem"].encode())
    return {
        "id": f"{vault_url}/certificates/{name}/{version['version']}",
        "kid": f"{vault_url}/keys/{name}/{version['version']}",
        "sid": f"{vault_url}/secrets/{name}/{version['version']}",
        "x5t": _x5t(cert),
        "cer": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        "attributes": _attributes(version),
        "policy": {"id": f"{vault_url}/certificates/{name}/policy", **entry["policy"]},
        "tags": entry.get("tags") or {},
    }


def _attributes(version: dict[str, Any]) -> dict[str, Any]:
    return {"enabled": True, "nbf": version["nbf"], "exp": version["exp"], "created": version["created"],
            "updated": version["created"], "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}  # fmt: skip


def latest(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["versions"][-1]


def with_defaults(policy: dict[str, Any] | None) -> dict[str, Any]:
    """A policy as Key Vault stores it: what was given, Key Vault's defaults for the rest (an AutoRenew
    lifetime action at 80 % of the lifetime when none is given)."""
    merged = default_policy()
    merged["lifetime_actions"] = [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
    ]
    merged.update({k: v for k, v in (policy or {}).items() if v})
    return merged


def add_version(
    vault: dict[str, Any], name: str, version: dict[str, Any], policy: dict[str, Any] | None
) -> dict:
    entry = vault["certificates"].setdefault(name, {"versions": [], "policy": with_defaults(policy)})
    if policy:
        entry["policy"] = with_defaults(policy)
    entry["versions"].append(version)
    return entry


def renew(vault: dict[str, Any], name: str) -> dict[str, Any]:
    """The policy's AutoRenew action firing: a new version with the same subject and names."""
    entry = vault["certificates"].get(name)
    if entry is None:
        raise VaultError(
            404,
            "CertificateNotFound",
            f"A certificate with (name/id) {name} was not found in this key vault.",
        )
    version = issue_version(entry["policy"])
    entry["versions"].append(version)
    return version


def renewal_due(entry: dict[str, Any], now: float) -> bool:
    """Whether the policy's AutoRenew lifetime action has come for the newest version: ``days_before_expiry``
    before its ``exp``, or at ``lifetime_percentage`` of its lifetime (Key Vault's two triggers). A renewal
    makes a newer version, so each version fires at most once."""
    if not entry.get("versions"):
        return False
    newest = latest(entry)
    nbf, exp = float(newest["nbf"]), float(newest["exp"])
    for action in entry.get("policy", {}).get("lifetime_actions") or []:
        if (action.get("action") or {}).get("action_type") != "AutoRenew":
            continue
        trigger = action.get("trigger") or {}
        if trigger.get("days_before_expiry") is not None:
            at = exp - float(trigger["days_before_expiry"]) * 86400
        elif trigger.get("lifetime_percentage") is not None:
            at = nbf + (exp - nbf) * float(trigger["lifetime_percentage"]) / 100
        else:
            continue
        if now >= at:
            return True
    return False


def renew_due(vaults: dict[str, dict[str, Any]], now: float) -> list[tuple[str, str]]:
    """Fire every AutoRenew that has come (``renewal_due``): the (vault, certificate) pairs renewed."""
    renewed = []
    for vault_name, vault in vaults.items():
        for name, entry in vault["certificates"].items():
            if renewal_due(entry, now):
                renew(vault, name)
                renewed.append((vault_name, name))
    return renewed


# --- the data plane --------------------------------------------------------------------------------------


def handle(vault: dict[str, Any], vault_url: str, method: str, parts: list[str], body: dict[str, Any],
           principal_id: str, admin_id: str) -> tuple[int, Any]:  # fmt: skip
    """One data-plane request on ``/certificates/...`` or ``/secrets/...``; (status, JSON body)."""
    admin = principal_id == admin_id
    if not admin and not can_read(vault, principal_id):
        raise VaultError(403, "Forbidden", f"Caller is not authorized to perform action on resource. Caller: "
                         f"oid={principal_id}; Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'; "
                         f"Vault: {vault['name']}; Assignment: not found",)  # fmt: skip
    if not parts or parts[0] not in ("certificates", "secrets"):
        raise VaultError(404, "NotFound", "Unknown Key Vault operation.")
    collection, rest = parts[0], parts[1:]
    if method != "GET" and not admin:
        raise VaultError(403, "Forbidden", "Caller is not authorized to perform this write on the vault.")
    if collection == "secrets":
        entry = vault["certificates"].get(rest[0]) if rest else None
        if entry is None:
            raise VaultError(
                404, "SecretNotFound", "A secret with (name/id) was not found in this key vault."
            )
        version = _version(entry, rest[1] if len(rest) > 1 else "")
        return 200, {"value": pfx_secret(version), "contentType": "application/x-pkcs12",
                     "id": f"{vault_url}/secrets/{rest[0]}/{version['version']}",
                     "kid": f"{vault_url}/keys/{rest[0]}/{version['version']}", "managed": True,
                     "attributes": _attributes(version)}  # fmt: skip
    if not rest:
        return 200, {
            "value": [_item(vault_url, n, e) for n, e in vault["certificates"].items()],
            "nextLink": None,
        }
    name, tail = rest[0], rest[1:]
    if method == "POST" and tail == ["import"]:
        entry = add_version(vault, name, import_version(body), body.get("policy"))
        return 200, bundle(vault_url, name, entry, latest(entry))
    if method == "POST" and tail == ["create"]:
        policy = with_defaults(body.get("policy"))
        entry = add_version(vault, name, issue_version(policy), policy)
        return 202, _operation(vault_url, name, "inProgress")  # issued; the first poll sees it completed
    entry = vault["certificates"].get(name)
    if entry is None:
        raise VaultError(
            404,
            "CertificateNotFound",
            f"A certificate with (name/id) {name} was not found in this key vault.",
        )
    if tail == ["pending"]:
        return 200, _operation(vault_url, name)
    if tail == ["policy"]:
        if method == "PATCH":
            entry["policy"] = {**entry["policy"], **body}
        return 200, {"id": f"{vault_url}/certificates/{name}/policy", **entry["policy"]}
    if tail == ["versions"]:
        return 200, {
            "value": [_version_item(vault_url, name, v) for v in entry["versions"]],
            "nextLink": None,
        }
    if method == "GET" and len(tail) <= 1:
        return 200, bundle(vault_url, name, entry, _version(entry, tail[0] if tail else ""))
    raise VaultError(405, "MethodNotAllowed", f"{method} is not allowed on {'/'.join(parts)}.")


def _version(entry: dict[str, Any], version: str) -> dict[str, Any]:
    if not version:
        return latest(entry)
    found = next((v for v in entry["versions"] if v["version"] == version), None)
    if found is None:
        raise VaultError(404, "CertificateNotFound", f"The certificate version {version} was not found.")
    return found


def _operation(vault_url: str, name: str, status: str = "completed") -> dict[str, Any]:
    return {"id": f"{vault_url}/certificates/{name}/pending", "issuer": {"name": "Self"}, "csr": "",
            "cancellation_requested": False, "status": status, "status_details": "",
            "target": f"{vault_url}/certificates/{name}", "request_id": secrets.token_hex(16)}  # fmt: skip


def _item(vault_url: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {**_version_item(vault_url, name, latest(entry)), "id": f"{vault_url}/certificates/{name}"}


def _version_item(vault_url: str, name: str, version: dict[str, Any]) -> dict[str, Any]:
    cert = x509.load_pem_x509_certificate(version["certPem"].encode())
    return {"id": f"{vault_url}/certificates/{name}/{version['version']}", "x5t": _x5t(cert),
            "attributes": _attributes(version), "tags": {}}  # fmt: skip


def public_vault(vault: dict[str, Any]) -> dict[str, Any]:
    """For the control API: versions by thumbprint and expiry, role assignments; no keys."""
    return {
        "name": vault["name"],
        "roleAssignments": list(vault["roleAssignments"]),
        "certificates": {
            n: [{"version": v["version"], "thumbprint": thumbprint_of(v),
                 "notAfter": dt.datetime.fromtimestamp(v["exp"], dt.UTC).isoformat()} for v in e["versions"]]
            for n, e in vault["certificates"].items()
        },
    }  # fmt: skip


def dumps(body: Any) -> str:
    return json.dumps(body)
