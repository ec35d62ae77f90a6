"""SMB over QUIC client access control in the guest (Windows Server 2025), and its verdict on a client.

What the cmdlets do (learn.microsoft.com/windows-server/storage/file-server/configure-smb-over-quic-client-access-control):

* ``Set-SmbServerCertificateMapping -Name <server> -RequireClientAuthentication $true``: clients of that
  name must present a certificate, which the allow/block lists then judge;
* ``Grant-SmbClientAccessToServer -Name <server> -IdentifierType SHA256|ISSUER -Identifier <v>`` allows,
  ``Block-SmbClientAccessToServer`` denies, ``Revoke-SmbClientAccessToServer`` removes an entry;
* ``Set-SmbServerConfiguration -AuditClientCertificateAccess $true`` logs each decision.

A client certificate is refused when any ``Deny`` entry matches it (its SHA-256, or its issuer); else it is
admitted when an ``Allow`` entry matches; else refused. Without RequireClientAuthentication nobody is asked.

The script ``smb-client-access`` applies ``Require``, ``Audit`` and the entries to grant, block and revoke
(JSON lists of ``{"type": "SHA256"|"ISSUER", "identifier": ...}``), then prints the status JSON.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

SCRIPT_SMB_CLIENT_ACCESS = "smb-client-access"
IDENTIFIER_TYPES = ("SHA256", "ISSUER")


def access_of(guest: dict[str, Any], server_name: str) -> dict[str, Any]:
    """The name's client access state (created empty)."""
    table = guest.setdefault("clientAccess", {})
    return table.setdefault(server_name.lower(), {"require": False, "entries": []})


def mapping_fields(guest: dict[str, Any], server_name: str) -> dict[str, Any]:
    """A mapping's RequireClientAuthentication and Get-SmbClientAccessToServer entries, as the status prints."""
    access = (guest.get("clientAccess") or {}).get(server_name.lower()) or {"require": False, "entries": []}
    return {"requireClientAuthentication": access["require"], "clientAccess": list(access["entries"])}


def public_access(guest: dict[str, Any]) -> dict[str, Any]:
    """What ``Get-SmbClientAccessToServer`` and the mapping's flag show, per name; plus the audit setting."""
    return {"audit": bool(guest.get("auditClientAccess", False)),
            "names": {n: {"require": a["require"], "entries": list(a["entries"])}
                      for n, a in (guest.get("clientAccess") or {}).items()}}  # fmt: skip


def _entries(raw: str, what: str) -> list[dict[str, str]]:
    from .certstore import ScriptFailed

    try:
        items = json.loads(raw or "[]")
    except json.JSONDecodeError:
        raise ScriptFailed(f"{what}: not a JSON list of entries") from None
    out = []
    for item in items if isinstance(items, list) else []:
        kind = str(item.get("type", "")).upper()
        if kind not in IDENTIFIER_TYPES:
            raise ScriptFailed(f"{what}: IdentifierType must be SHA256 or ISSUER, not {kind!r}")
        value = str(item.get("identifier", ""))
        out.append({"type": kind, "identifier": value.upper() if kind == "SHA256" else value})
    return out


def apply(guest: dict[str, Any], parameters: dict[str, str]) -> None:
    """``smb-client-access``: RequireClientAuthentication, the audit setting, Grant/Block/Revoke."""
    from .certstore import ScriptFailed

    name = parameters.get("ServerName", "")
    if not any(m["name"].lower() == name.lower() for m in guest["mappings"]):
        raise ScriptFailed(f"Set-SmbServerCertificateMapping: no mapping named {name}")
    access = access_of(guest, name)
    access["require"] = parameters.get("Require", "false").lower() == "true"
    guest["auditClientAccess"] = parameters.get("Audit", "false").lower() == "true"
    revoke = _entries(parameters.get("Revoke", ""), "Revoke-SmbClientAccessToServer")
    keys = {(e["type"], e["identifier"]) for e in revoke}
    access["entries"] = [e for e in access["entries"] if (e["type"], e["identifier"]) not in keys]
    for action, raw in (("Allow", parameters.get("Grant", "")), ("Deny", parameters.get("Block", ""))):
        for entry in _entries(raw, f"{'Grant' if action == 'Allow' else 'Block'}-SmbClientAccessToServer"):
            access["entries"] = [e for e in access["entries"]
                                 if (e["type"], e["identifier"]) != (entry["type"], entry["identifier"])]  # fmt: skip
            access["entries"].append({**entry, "action": action})


def admits(guest: dict[str, Any], server_name: str, client: x509.Certificate | None) -> tuple[bool, str]:
    """The server's verdict on a client (and why), for the name it serves."""
    access = (guest.get("clientAccess") or {}).get(server_name.lower())
    if not access or not access["require"]:
        return True, "client authentication not required"
    if client is None:
        return False, "a client certificate is required"
    sha256 = client.fingerprint(hashes.SHA256()).hex().upper()
    issuer = client.issuer.rfc4514_string()

    def matches(entry: dict[str, str]) -> bool:
        return entry["identifier"] == sha256 if entry["type"] == "SHA256" else entry["identifier"] == issuer

    if any(matches(e) for e in access["entries"] if e["action"] == "Deny"):
        return False, f"client certificate {sha256} is blocked"
    if any(matches(e) for e in access["entries"] if e["action"] == "Allow"):
        return True, "allowed"
    return False, f"client certificate {sha256} is not granted access"
