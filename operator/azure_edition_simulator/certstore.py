"""The guest's certificate store (``Cert:\\LocalMachine\\My``) and SMB server certificate mappings.

What the scripts that touch them do on Windows Server, modelled on the cmdlets they call:

* ``Import-PfxCertificate -CertStoreLocation Cert:\\LocalMachine\\My`` (script ``smb-cert-import``): a
  PFX (base64) and its password arrive as protected parameters of a managed Run Command; the leaf, its key
  and chain land in the store, keyed by thumbprint. A wrong password fails the script, as the cmdlet does
  ("The PFX password is incorrect") without echoing it.
* ``New-``/``Set-SmbServerCertificateMapping -Name <server> -Thumbprint <t> -StoreName My`` (script
  ``smb-cert-map``): the mapping for a name is created, or re-pointed in place; a thumbprint that is not in
  the store fails. ``Remove-SmbServerCertificateMapping`` for the other mappings naming a thumbprint the
  caller lists as replaced.

learn.microsoft.com/windows-server/storage/file-server/smb-over-quic (certificate mapping), and
learn.microsoft.com/powershell/module/pki/import-pfxcertificate.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

SCRIPT_SMB_CERT_IMPORT = "smb-cert-import"
SCRIPT_SMB_CERT_MAP = "smb-cert-map"
_KEY_FIELDS = ("certPem", "keyPem", "chainPem")


class ScriptFailed(Exception):
    """The script stopped with an error ($ErrorActionPreference = 'Stop'); the message is its stderr."""


def store_of(guest: dict[str, Any]) -> list[dict[str, Any]]:
    """``Cert:\\LocalMachine\\My``; guests persisted before the store existed get an empty one."""
    return guest.setdefault("certStore", [])


def add_to_store(guest: dict[str, Any], entry: dict[str, Any]) -> None:
    """Put a certificate (with its key) in the store; importing the same thumbprint again replaces it."""
    store = store_of(guest)
    store[:] = [e for e in store if e["thumbprint"] != entry["thumbprint"]] + [entry]


def entry_of(mapping: dict[str, Any]) -> dict[str, Any]:
    """The store entry of a certificate mapped by other means (the control API, a default certificate)."""
    return {k: v for k, v in mapping.items() if k not in ("name", "spec")}


def public_store(guest: dict[str, Any]) -> list[dict[str, Any]]:
    """The store without key material, as ``Get-ChildItem Cert:\\LocalMachine\\My`` shows it."""
    return [
        {**{k: v for k, v in e.items() if k not in _KEY_FIELDS}, "hasPrivateKey": bool(e.get("keyPem"))}
        for e in store_of(guest)
    ]


def import_pfx(guest: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """``smb-cert-import``: decode the PFX, check its password, add leaf + key + chain to the store."""
    from .guest import describe_certificate

    encoded, password = parameters.get("PfxBase64"), parameters.get("PfxPassword")
    if not encoded or password is None:
        raise ScriptFailed("Import-PfxCertificate: parameters PfxBase64 and PfxPassword are required")
    try:
        key, leaf, extra = pkcs12.load_key_and_certificates(
            base64.b64decode(encoded, validate=True), password.encode()
        )
    except (binascii.Error, ValueError):
        raise ScriptFailed(
            "Import-PfxCertificate: The PFX password is incorrect or the file is not a PFX."
        ) from None
    if leaf is None or key is None:
        raise ScriptFailed("Import-PfxCertificate: the PFX holds no certificate with a private key")
    cert_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    entry = {
        **describe_certificate(cert_pem),
        "certPem": cert_pem,
        "keyPem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "chainPem": "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in extra),
    }
    add_to_store(guest, entry)
    return {"imported": entry["thumbprint"], "notAfter": entry["notAfter"]}


def map_certificate(guest: dict[str, Any], parameters: dict[str, str]) -> None:
    """``smb-cert-map``: New-/Set-SmbServerCertificateMapping, then Remove- for replaced thumbprints."""
    name, thumbprint = parameters.get("ServerName", ""), parameters.get("Thumbprint", "").upper()
    if not name or not thumbprint:
        raise ScriptFailed(
            "Set-SmbServerCertificateMapping: parameters ServerName and Thumbprint are required"
        )
    entry = next((e for e in store_of(guest) if e["thumbprint"] == thumbprint), None)
    if entry is None:
        raise ScriptFailed(
            f"New-SmbServerCertificateMapping: the certificate {thumbprint} was not found in Cert:\\LocalMachine\\My"
        )
    mapping = {"name": name, **{k: v for k, v in entry.items() if k != "name"}}
    mappings = guest["mappings"]
    index = next((i for i, m in enumerate(mappings) if m["name"].lower() == name.lower()), None)
    if index is None:
        mappings.append(mapping)
    else:
        mappings[index] = mapping  # Set-: the same mapping, re-pointed (order kept: the listener's first)
    replaced = {t.strip().upper() for t in parameters.get("RemoveThumbprints", "").split(",") if t.strip()}
    replaced.discard(thumbprint)
    guest["mappings"] = [m for m in mappings if m["thumbprint"] not in replaced]
