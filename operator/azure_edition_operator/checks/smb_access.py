"""SMB over QUIC client access control: what the guest must change to match the spec (pure).

The spec (``spec.smbOverQuic.clientAccess``) declares whether clients must present a certificate, which
certificates are allowed and which blocked (by SHA-256 or issuer) and whether access is audited; the guest
reports its mapping's ``RequireClientAuthentication``, its ``Get-SmbClientAccessToServer`` entries and
``AuditClientCertificateAccess``. ``plan_access`` compares them: entries to grant, block and revoke (an
entry with the wrong action is revoked and set again), and the two switches. Entries the operator did not
declare are revoked: the spec is the whole list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..api.v1alpha1 import ClientCertificateMatch, SmbClientAccessSpec
from .smb_guest import AccessEntry, GuestState

ALLOW, DENY = "Allow", "Deny"
Entry = tuple[str, str, str]  # (SHA256|ISSUER, identifier, Allow|Deny)


@dataclass(frozen=True)
class AccessPlan:
    require: bool
    audit: bool
    grant: tuple[Entry, ...]
    block: tuple[Entry, ...]
    revoke: tuple[Entry, ...]
    drift: tuple[str, ...]  # what differed, for the Event (empty: nothing)

    def parameters(self, server_name: str) -> dict[str, str]:
        """The smb-client-access script's parameters."""

        def listed(entries: tuple[Entry, ...]) -> str:
            return json.dumps([{"type": t, "identifier": i} for t, i, _ in entries])

        return {"ServerName": server_name, "Require": str(self.require).lower(), "Audit": str(self.audit).lower(),
                "Grant": listed(self.grant), "Block": listed(self.block), "Revoke": listed(self.revoke)}  # fmt: skip


def _entry(match: ClientCertificateMatch, action: str) -> Entry:
    if match.sha256 is not None:
        return ("SHA256", match.sha256.upper(), action)
    assert match.issuer is not None
    return ("ISSUER", match.issuer, action)


def desired_entries(spec: SmbClientAccessSpec) -> set[Entry]:
    """Allow and block entries; a certificate in both is blocked (block wins, as on Windows)."""
    blocked = {_entry(m, DENY) for m in spec.block}
    blocked_keys = {(t, i) for t, i, _ in blocked}
    return blocked | {e for m in spec.allow if (e := _entry(m, ALLOW))[:2] not in blocked_keys}


def _observed(entries: tuple[AccessEntry, ...]) -> set[Entry]:
    return {(e.type.upper(), e.identifier.upper() if e.type.upper() == "SHA256" else e.identifier, e.action)
            for e in entries}  # fmt: skip


def plan_access(spec: SmbClientAccessSpec, guest: GuestState, server_name: str) -> AccessPlan | None:
    """What to change in the guest (None: it already matches, or there is no mapping to attach it to)."""
    mapping = guest.mapping_for(server_name)
    if mapping is None:
        return None
    want, have = desired_entries(spec), _observed(mapping.client_access)
    wrong = sorted(have - want)
    missing = sorted(want - have)
    drift = []
    if mapping.require_client_authentication != spec.require_client_certificate:
        drift.append(f"RequireClientAuthentication {mapping.require_client_authentication} -> "
                     f"{spec.require_client_certificate}")  # fmt: skip
    if guest.audit_client_access != spec.audit:
        drift.append(f"AuditClientCertificateAccess {guest.audit_client_access} -> {spec.audit}")
    drift += [f"revoke {a} {t} {i}" for t, i, a in wrong] + [f"{'grant' if a == ALLOW else 'block'} {t} {i}"
                                                             for t, i, a in missing]  # fmt: skip
    if not drift:
        return None
    return AccessPlan(
        require=spec.require_client_certificate, audit=spec.audit,
        grant=tuple(e for e in missing if e[2] == ALLOW), block=tuple(e for e in missing if e[2] == DENY),
        revoke=tuple(wrong), drift=tuple(drift),
    )  # fmt: skip
