"""SMB over QUIC seen from inside the guest (Run Command): the scripts, and their output parsed (pure).

The scripts are real PowerShell for Windows Server Azure Edition. Each starts with a stable marker
line (``# azureedition.io/script: <name>``) so logs, audits and the ARM simulator recognise them.
They print one compact JSON object on stdout, which ``parse_guest_state`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

# Prints the SMB over QUIC state: EnableSMBQUIC, the certificate mappings and the certificates of
# LocalMachine\My (never their keys: HasPrivateKey only). The map script ends with the same lines.
_STATUS_BODY = r"""$cfg = Get-SmbServerConfiguration
$access = [bool](Get-Command Get-SmbClientAccessToServer -ErrorAction SilentlyContinue)  # Windows Server 2025
$maps = @(Get-SmbServerCertificateMapping | ForEach-Object {
  $cert = Get-Item -Path "Cert:\LocalMachine\$($_.StoreName)\$($_.Thumbprint)" -ErrorAction SilentlyContinue
  $entries = if ($access) { @(Get-SmbClientAccessToServer -Name $_.Name | ForEach-Object {
    [pscustomobject]@{ type = "$($_.IdentifierType)".ToUpper(); identifier = $_.Identifier; action = "$($_.Action)" }
  }) } else { @() }
  [pscustomobject]@{
    name = $_.Name
    thumbprint = $_.Thumbprint
    notAfter = if ($cert) { $cert.NotAfter.ToUniversalTime().ToString('o') } else { $null }
    requireClientAuthentication = [bool]$_.RequireClientAuthentication
    clientAccess = $entries
  }
})
$store = @(Get-ChildItem -Path Cert:\LocalMachine\My | ForEach-Object {
  [pscustomobject]@{
    thumbprint = $_.Thumbprint
    notBefore = $_.NotBefore.ToUniversalTime().ToString('o')
    notAfter = $_.NotAfter.ToUniversalTime().ToString('o')
    subject = $_.Subject
    dnsNames = @($_.DnsNameList | ForEach-Object { $_.Unicode })
    hasPrivateKey = [bool]$_.HasPrivateKey
  }
})
$ports = if (Get-Command Get-SmbServerAlternativePort -ErrorAction SilentlyContinue) {  # Windows Server 2025
  @(Get-SmbServerAlternativePort -TransportType QUIC -ErrorAction SilentlyContinue | ForEach-Object {
    [pscustomobject]@{ transportType = "$($_.TransportType)"; port = [int]$_.Port; enableInstances = "$($_.EnableInstances)" }
  }) } else { @() }
[pscustomobject]@{ enableSmbQuic = [bool]$cfg.EnableSMBQUIC; mappings = $maps; store = $store
  auditClientAccess = [bool]$cfg.AuditClientCertificateAccess; alternativePorts = $ports } |
  ConvertTo-Json -Compress -Depth 5"""

STATUS_SCRIPT = [
    "# azureedition.io/script: smb-quic-status",
    "$ErrorActionPreference = 'Stop'",
    *_STATUS_BODY.splitlines(),
]

# Managed Run Command (virtualMachines/runCommands): the PFX and its one-time password arrive as protected
# parameters, which ARM never returns and Run Command never logs
# (learn.microsoft.com/azure/virtual-machines/windows/run-command-managed). The file lives only for the import.
IMPORT_SCRIPT = r"""# azureedition.io/script: smb-cert-import
param([string]$PfxBase64, [string]$PfxPassword)
$ErrorActionPreference = 'Stop'
$secure = ConvertTo-SecureString -String $PfxPassword -AsPlainText -Force
$path = Join-Path $env:TEMP ([guid]::NewGuid().ToString() + '.pfx')
try {
  [IO.File]::WriteAllBytes($path, [Convert]::FromBase64String($PfxBase64))
  $cert = Import-PfxCertificate -FilePath $path -CertStoreLocation Cert:\LocalMachine\My -Password $secure |
    Where-Object { $_.HasPrivateKey } | Select-Object -First 1
} finally {
  Remove-Item -Path $path -Force -ErrorAction SilentlyContinue
}
[pscustomobject]@{ imported = $cert.Thumbprint; notAfter = $cert.NotAfter.ToUniversalTime().ToString('o') } |
  ConvertTo-Json -Compress""".splitlines()

# Points the mapping for ServerName at Thumbprint (New- or Set-SmbServerCertificateMapping), removes the
# mappings of the certificates it replaced, and prints the state it leaves (as the status script does).
MAP_SCRIPT = [
    "# azureedition.io/script: smb-cert-map",
    "param([string]$ServerName, [string]$Thumbprint, [string]$RemoveThumbprints = '')",
    "$ErrorActionPreference = 'Stop'",
    *r"""if (Get-SmbServerCertificateMapping -Name $ServerName -ErrorAction SilentlyContinue) {
  Set-SmbServerCertificateMapping -Name $ServerName -Thumbprint $Thumbprint -StoreName My -Force
} else {
  New-SmbServerCertificateMapping -Name $ServerName -Thumbprint $Thumbprint -StoreName My -Force
}
$replaced = @($RemoveThumbprints -split ',' | Where-Object { $_ -and $_ -ne $Thumbprint })
Get-SmbServerCertificateMapping | Where-Object { $replaced -contains $_.Thumbprint } |
  Remove-SmbServerCertificateMapping -Force""".splitlines(),
    *_STATUS_BODY.splitlines(),
]

# Client access control (Windows Server 2025): RequireClientAuthentication on the mapping, the audit setting,
# and the entries to grant, block and revoke (JSON lists of {type: SHA256|ISSUER, identifier}); prints the
# state it leaves. learn.microsoft.com/windows-server/storage/file-server/configure-smb-over-quic-client-access-control
CLIENT_ACCESS_SCRIPT = [
    "# azureedition.io/script: smb-client-access",
    "param([string]$ServerName, [string]$Require = 'false', [string]$Audit = 'false', [string]$Grant = '[]',"
    " [string]$Block = '[]', [string]$Revoke = '[]')",
    "$ErrorActionPreference = 'Stop'",
    *r"""Set-SmbServerCertificateMapping -Name $ServerName -RequireClientAuthentication ($Require -eq 'true') -Force
Set-SmbServerConfiguration -AuditClientCertificateAccess ($Audit -eq 'true') -Force
foreach ($e in @($Revoke | ConvertFrom-Json)) {
  Revoke-SmbClientAccessToServer -Name $ServerName -IdentifierType $e.type -Identifier $e.identifier -Force
}
foreach ($e in @($Grant | ConvertFrom-Json)) {
  Grant-SmbClientAccessToServer -Name $ServerName -IdentifierType $e.type -Identifier $e.identifier -Force
}
foreach ($e in @($Block | ConvertFrom-Json)) {
  Block-SmbClientAccessToServer -Name $ServerName -IdentifierType $e.type -Identifier $e.identifier -Force
}""".splitlines(),
    *_STATUS_BODY.splitlines(),
]

# Alternative SMB over QUIC ports (Windows Server 2025, learn.microsoft.com/windows-server/storage/file-server/
# smb-ports): removes the QUIC ports in Remove and adds those in Add (comma-separated), then prints the state
# it leaves. -EnableInstances Default: the port serves the default SMB server instance.
ALTERNATIVE_PORT_SCRIPT = [
    "# azureedition.io/script: smb-alternative-port",
    "param([string]$Add = '', [string]$Remove = '')",
    "$ErrorActionPreference = 'Stop'",
    *r"""foreach ($p in @($Remove -split ',' | Where-Object { $_ })) {
  Remove-SmbServerAlternativePort -TransportType QUIC -Port ([uint16]$p) -Force
}
foreach ($p in @($Add -split ',' | Where-Object { $_ })) {
  New-SmbServerAlternativePort -TransportType QUIC -Port ([uint16]$p) -EnableInstances Default -Force
}""".splitlines(),
    *_STATUS_BODY.splitlines(),
]

ENABLE_SCRIPT = r"""# azureedition.io/script: smb-quic-enable
$ErrorActionPreference = 'Stop'
Set-SmbServerConfiguration -EnableSMBQUIC $true -Force
[pscustomobject]@{ enableSmbQuic = [bool](Get-SmbServerConfiguration).EnableSMBQUIC } | ConvertTo-Json -Compress
""".splitlines()


@dataclass(frozen=True)
class AccessEntry:
    """One Get-SmbClientAccessToServer entry: SHA256 or ISSUER, its identifier, Allow or Deny."""

    type: str
    identifier: str
    action: str


@dataclass(frozen=True)
class CertificateMapping:
    name: str
    thumbprint: str
    not_after: datetime | None
    require_client_authentication: bool = False
    client_access: tuple[AccessEntry, ...] = ()


@dataclass(frozen=True)
class StoredCertificate:
    """A certificate of the guest's LocalMachine\\My store, as Get-ChildItem shows it."""

    thumbprint: str
    not_before: datetime | None
    not_after: datetime | None
    dns_names: tuple[str, ...] = ()
    has_private_key: bool = False


@dataclass(frozen=True)
class GuestState:
    """What the guest says about SMB over QUIC."""

    smb_quic_enabled: bool
    mappings: tuple[CertificateMapping, ...] = ()
    store: tuple[StoredCertificate, ...] = ()
    audit_client_access: bool = False
    alternative_quic_ports: tuple[int, ...] = ()  # Get-SmbServerAlternativePort -TransportType QUIC

    def stored(self, thumbprint: str) -> StoredCertificate | None:
        return next((c for c in self.store if c.thumbprint == thumbprint.upper()), None)

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
            not_after=_moment(m.get("notAfter")),
            require_client_authentication=bool(m.get("requireClientAuthentication")),
            client_access=tuple(
                AccessEntry(
                    str(e.get("type", "")).upper(), str(e.get("identifier", "")), str(e.get("action", ""))
                )
                for e in _listed(m.get("clientAccess"))
                if isinstance(e, dict)
            ),
        )
        for m in raw
    )
    store = data.get("store") or []
    if isinstance(store, dict):
        store = [store]
    certificates = tuple(
        StoredCertificate(
            thumbprint=str(c.get("thumbprint", "")).upper(),
            not_before=_moment(c.get("notBefore")),
            not_after=_moment(c.get("notAfter")),
            dns_names=tuple(str(n) for n in _listed(c.get("dnsNames"))),
            has_private_key=bool(c.get("hasPrivateKey")),
        )
        for c in store
    )
    ports = tuple(sorted({
        int(p["port"]) for p in _listed(data.get("alternativePorts"))
        if isinstance(p, dict) and str(p.get("transportType", "")).upper() == "QUIC" and str(p.get("port", "")).isdigit()
    }))  # fmt: skip
    return GuestState(
        bool(data["enableSmbQuic"]), mappings, certificates, bool(data.get("auditClientAccess")), ports
    )


def _moment(text: object) -> datetime | None:
    """An ISO 8601 instant as PowerShell's ``ToString('o')`` prints it (or None)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as err:
        raise GuestOutputError(f"in-guest check printed an unreadable time {str(text)[:40]!r}") from err


def _listed(value: object) -> list[object]:
    """ConvertTo-Json renders a one-element array as the element itself."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


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
