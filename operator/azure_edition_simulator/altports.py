"""SMB alternative ports in the guest (Windows Server 2025), and which of them clients can reach.

What the cmdlets do (learn.microsoft.com/windows-server/storage/file-server/smb-ports; the smbshare module's
``New-``/``Get-``/``Remove-SmbServerAlternativePort``): ``New-SmbServerAlternativePort -TransportType QUIC
-Port N -EnableInstances Default`` makes the SMB server also listen for QUIC on UDP N;
``Remove-SmbServerAlternativePort -TransportType QUIC -Port N`` stops it; ``Get-SmbServerAlternativePort``
lists them. The script ``smb-alternative-port`` takes ``Add`` and ``Remove`` (comma-separated ports), then
prints the status JSON. The simulator does not model the Windows Server version here: any guest accepts the
cmdlets (the operator refuses the field for 2022 images at admission).

``reachable`` is what the simulated QUIC endpoint serves: a guest port that a rule of the primary NIC's
network security group admits (nsg.admits_udp). A NIC without a group reaches no alternative port: the
operator's public IPs are Standard, which are closed to inbound traffic unless a group allows it
(learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses#sku), and the simulator does not
model subnet groups. The VM's main QUIC port is served whatever the group says (as before groups existed).
"""

from __future__ import annotations

from typing import Any

from . import nsg
from .world import World, key

SCRIPT_SMB_ALTERNATIVE_PORT = "smb-alternative-port"


def ports_of(guest: dict[str, Any]) -> list[dict[str, Any]]:
    return guest.setdefault("alternativePorts", [])


def public_ports(guest: dict[str, Any]) -> list[dict[str, Any]]:
    """What Get-SmbServerAlternativePort shows."""
    return [dict(p) for p in guest.get("alternativePorts") or []]


def _ports(raw: str, what: str) -> list[int]:
    from .certstore import ScriptFailed

    out = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ScriptFailed(f"{what}: Port must be a UInt16 from 1 to 65535, not {item!r}")
        out.append(int(item))
    return out


def apply(guest: dict[str, Any], parameters: dict[str, str]) -> None:
    """``smb-alternative-port``: Remove-, then New-SmbServerAlternativePort -TransportType QUIC."""
    table = ports_of(guest)
    for port in _ports(parameters.get("Remove", ""), "Remove-SmbServerAlternativePort"):
        table[:] = [p for p in table if not (p["transportType"] == "QUIC" and p["port"] == port)]
    for port in _ports(parameters.get("Add", ""), "New-SmbServerAlternativePort"):
        if not any(p["transportType"] == "QUIC" and p["port"] == port for p in table):
            table.append({"transportType": "QUIC", "port": port, "enableInstances": "Default"})


def primary_nic(world: World, vm: dict[str, Any]) -> dict[str, Any] | None:
    refs = vm["properties"].get("networkProfile", {}).get("networkInterfaces", [])
    if not refs:
        return None
    primary = next((r for r in refs if (r.get("properties") or {}).get("primary")), refs[0])
    return world.nics.get(key(primary["id"]))


def reachable(world: World, vm: dict[str, Any], guest: dict[str, Any]) -> list[int]:
    """The guest's alternative QUIC ports that the primary NIC's group lets clients reach."""
    nic = primary_nic(world, vm)
    if nic is None or not (nic["properties"].get("networkSecurityGroup") or {}).get("id"):
        return []
    return sorted(
        p["port"] for p in guest.get("alternativePorts") or []
        if p["transportType"] == "QUIC" and nsg.admits_udp(world, nic, p["port"])
    )  # fmt: skip
