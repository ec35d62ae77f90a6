"""SMB over QUIC seen from inside the guest (Run Command): the scripts, and their output parsed (pure).

The scripts are real PowerShell for Windows Server Azure Edition. Each starts with a stable marker
line (``# azureedition.io/script: <name>``) so logs, audits and the ARM simulator recognise them.
They print one compact JSON object on stdout, which ``parse_guest_state`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

STATUS_SCRIPT = r"""# azureedition.io/script: smb-quic-status
$ErrorActionPreference = 'Stop'
$cfg = Get-SmbServerConfiguration
$maps = @(Get-SmbServerCertificateMapping | ForEach-Object {
  $cert = Get-Item -Path "Cert:\LocalMachine\$($_.StoreName)\$($_.Thumbprint)" -ErrorAction SilentlyContinue
  [pscustomobject]@{
    name = $_.Name
    thumbprint = $_.Thumbprint
    notAfter = if ($cert) { $cert.NotAfter.ToUniversalTime().ToString('o') } else { $null }
  }
})
[pscustomobject]@{ enableSmbQuic = [bool]$cfg.EnableSMBQUIC; mappings = $maps } | ConvertTo-Json -Compress -Depth 4
""".splitlines()

ENABLE_SCRIPT = r"""# azureedition.io/script: smb-quic-enable
$ErrorActionPreference = 'Stop'
Set-SmbServerConfiguration -EnableSMBQUIC $true -Force
[pscustomobject]@{ enableSmbQuic = [bool](Get-SmbServerConfiguration).EnableSMBQUIC } | ConvertTo-Json -Compress
""".splitlines()


@dataclass(frozen=True)
class CertificateMapping:
    name: str
    thumbprint: str
    not_after: datetime | None


@dataclass(frozen=True)
class GuestState:
    """What the guest says about SMB over QUIC."""

    smb_quic_enabled: bool
    mappings: tuple[CertificateMapping, ...] = ()

    def mapping_for(self, server_name: str) -> CertificateMapping | None:
        wanted = server_name.lower().rstrip(".")
        return next((m for m in self.mappings if m.name.lower().rstrip(".") == wanted), None)


class GuestOutputError(ValueError):
    """The script's output was not the JSON it prints on a healthy Windows VM."""


def parse_guest_state(stdout: str) -> GuestState:
    """Parse the status (or enable) script's stdout."""
    try:
        data = json.loads(stdout.strip() or "null")
    except json.JSONDecodeError as err:
        raise GuestOutputError(f"in-guest check printed no JSON: {stdout[:200]!r}") from err
    if not isinstance(data, dict) or "enableSmbQuic" not in data:
        raise GuestOutputError(f"in-guest check printed unexpected output: {stdout[:200]!r}")
    raw = data.get("mappings") or []
    if isinstance(raw, dict):  # ConvertTo-Json renders a one-element array as the element itself
        raw = [raw]
    mappings = tuple(
        CertificateMapping(
            name=str(m.get("name", "")),
            thumbprint=str(m.get("thumbprint", "")).upper(),
            not_after=datetime.fromisoformat(m["notAfter"].replace("Z", "+00:00"))
            if m.get("notAfter")
            else None,
        )
        for m in raw
    )
    return GuestState(bool(data["enableSmbQuic"]), mappings)


def mapping_problems(guest: GuestState, server_name: str, served_thumbprint: str | None) -> tuple[str, ...]:
    """Why the guest's certificate mapping does not match what clients are served (empty: it does)."""
    mapping = guest.mapping_for(server_name)
    if mapping is None:
        names = ", ".join(m.name for m in guest.mappings) or "none"
        return (
            f"no SMB server certificate mapping for {server_name} (mappings: {names}); "
            f"create it with New-SmbServerCertificateMapping -Name {server_name}",
        )
    if served_thumbprint and mapping.thumbprint != served_thumbprint.upper():
        return (
            f"the mapping for {server_name} names thumbprint {mapping.thumbprint} but the endpoint serves "
            f"{served_thumbprint.upper()}; update the mapping to the certificate you mean to serve",
        )
    return ()


def run_command_stdout(result: object) -> str:
    """StdOut of a RunCommandResult (``value[]`` of InstanceViewStatus, code ComponentStatus/StdOut/...)."""
    for status in getattr(result, "value", None) or []:
        if "StdOut" in (getattr(status, "code", "") or ""):
            return getattr(status, "message", "") or ""
    return ""
