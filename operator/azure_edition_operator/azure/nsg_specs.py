"""Pure builders for the network security group the operator puts on the VM's primary NIC when
``spec.smbOverQuic.alternativePort`` is set: the parameters to send, and what differs from Azure.

Why a group at all: an alternative SMB over QUIC port (New-SmbServerAlternativePort, Windows Server 2025,
learn.microsoft.com/windows-server/storage/file-server/smb-ports) is useless unless inbound UDP reaches it.
A group on a NIC is evaluated after the subnet's (learn.microsoft.com/azure/virtual-network/
network-security-group-how-it-works), and its DenyAllInBound default rule would then also shut the main QUIC
port, so the group admits both: UDP ``port`` and UDP ``alternativePort``. Rules the operator does not own
(added by hand, e.g. RDP) are kept on every update; only the two named rules below are the operator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1 import AzureEditionVMSpec
from ..images import Capability
from .sdk import network
from .specs import VMIdentity, merged_tags, same_id

QUIC_RULE = "azureedition-smb-quic"
ALTERNATIVE_RULE = "azureedition-smb-quic-alternative"
OUR_RULES = (QUIC_RULE, ALTERNATIVE_RULE)
QUIC_PRIORITY, ALTERNATIVE_PRIORITY = 1000, 1001  # custom rules run 100–4096; low enough to leave room


@dataclass(frozen=True)
class SmbPorts:
    """The UDP ports SMB over QUIC is served on: the listener's and the alternative one."""

    port: int
    alternative: int


def smb_ports(spec: AzureEditionVMSpec) -> SmbPorts | None:
    """The ports the group must admit (None: no alternative port, so no group)."""
    smb = spec.smb_over_quic
    if Capability.SMB_OVER_QUIC not in spec.capabilities or smb is None or smb.alternative_port is None:
        return None
    return SmbPorts(smb.port, smb.alternative_port)


def nsg_name(identity: VMIdentity) -> str:
    return f"{identity.vm_name}-nsg"


def nsg_id(identity: VMIdentity) -> str:
    return identity.resource_id("Microsoft.Network", "networkSecurityGroups", nsg_name(identity))


def _rule(name: str, port: int, priority: int) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "protocol": "Udp", "access": "Allow", "direction": "Inbound", "priority": priority,
            "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": str(port),
        },
    }  # fmt: skip


def our_rules(ports: SmbPorts) -> list[dict[str, Any]]:
    return [
        _rule(QUIC_RULE, ports.port, QUIC_PRIORITY),
        _rule(ALTERNATIVE_RULE, ports.alternative, ALTERNATIVE_PRIORITY),
    ]


def nsg_parameters(
    identity: VMIdentity, tags: Mapping[str, str], ports: SmbPorts
) -> network.NetworkSecurityGroup:
    """A new group: the operator's tags and the two inbound UDP rules."""
    return network.NetworkSecurityGroup(
        {"location": identity.location, "tags": dict(tags), "properties": {"securityRules": our_rules(ports)}}
    )


_COMPARED = ("protocol", "access", "direction", "priority", "sourceAddressPrefix", "sourcePortRange",
             "destinationAddressPrefix", "destinationPortRange")  # fmt: skip


def _view(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    props = rule.get("properties") or {}
    return tuple(str(props.get(f)) if props.get(f) is not None else None for f in _COMPARED)


def nsg_update(
    observed: network.NetworkSecurityGroup, tags: Mapping[str, str], ports: SmbPorts
) -> network.NetworkSecurityGroup | None:
    """The group to PUT when our rules or tags differ from Azure's (None: nothing to change).

    Starts from what Azure returned, so rules added by others stay; ours are replaced by name."""
    body: dict[str, Any] = observed.as_dict()
    props = body.setdefault("properties", {})
    have = {r.get("name"): r for r in props.get("securityRules") or []}
    want = our_rules(ports)
    rules_differ = any(n not in have or _view(have[n]) != _view(r) for r in want for n in [r["name"]])
    new_tags = merged_tags(tags, observed.tags)
    if not rules_differ and new_tags is None:
        return None
    props["securityRules"] = [
        r for r in props.get("securityRules") or [] if r.get("name") not in OUR_RULES
    ] + want
    props.pop("defaultSecurityRules", None)
    props.pop("networkInterfaces", None)
    if new_tags is not None:
        body["tags"] = new_tags
    return network.NetworkSecurityGroup(body)


def nic_nsg_update(
    nic: network.NetworkInterface, group_id: str | None, ours: str
) -> network.NetworkInterface | None:
    """The NIC to PUT so it refers to ``group_id`` (None: to no group of ours); None when it already does.

    A group someone else attached is replaced only when we need ours there; without an alternative port
    only our own reference is removed (the operator never detaches what it did not attach)."""
    have = (
        nic.properties.network_security_group.id
        if nic.properties and nic.properties.network_security_group
        else None
    )
    if group_id is not None:
        if same_id(have, group_id):
            return None
    elif have is None or not same_id(have, ours):
        return None
    body: dict[str, Any] = nic.as_dict()
    if group_id is None:
        body.setdefault("properties", {}).pop("networkSecurityGroup", None)
    else:
        body.setdefault("properties", {})["networkSecurityGroup"] = {"id": group_id}
    return network.NetworkInterface(body)
