"""The network security group for an alternative SMB over QUIC port: when one is wanted, its parameters,
and the PUTs it takes (none when Azure already matches; others' rules and tags kept)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from azure_edition_operator.azure import nsg_specs, specs
from azure_edition_operator.azure.sdk import network
from tests.unit.test_azure_specs import OWNER, SERVERS, make_spec

SMB = make_spec(
    capabilities=["SMBOverQUIC"], azure={"publicIP": True, "tags": {"env": "prod"}},
    smbOverQuic={"serverName": "fs01.branch-a.contoso.com", "alternativePort": 8443},
)  # fmt: skip
IDENTITY = specs.vm_identity(OWNER, SMB.azure)
TAGS = specs.desired_tags(SMB, OWNER)
PORTS = nsg_specs.SmbPorts(443, 8443)


def test_a_group_is_wanted_only_with_an_alternative_port() -> None:
    assert nsg_specs.smb_ports(SMB) == PORTS
    plain = make_spec(capabilities=["SMBOverQUIC"], smbOverQuic={"serverName": "fs01.branch-a.contoso.com"})
    assert nsg_specs.smb_ports(plain) is None
    custom = make_spec(capabilities=["SMBOverQUIC"],
                       smbOverQuic={"serverName": "fs01.contoso.com", "port": 4443, "alternativePort": 5443})  # fmt: skip
    assert nsg_specs.smb_ports(custom) == nsg_specs.SmbPorts(4443, 5443)


def test_2022_pins_refuse_the_alternative_port() -> None:
    with pytest.raises(ValidationError, match="alternativePort"):
        make_spec(capabilities=["SMBOverQUIC"], image={"windowsServerVersion": "2022"},
                  smbOverQuic={"serverName": "fs01.contoso.com", "alternativePort": 8443})  # fmt: skip


def test_parameters_admit_both_smb_ports_inbound_udp_and_carry_our_tags() -> None:
    group = nsg_specs.nsg_parameters(IDENTITY, TAGS, PORTS)
    body = group.as_dict()
    assert body["location"] == "westeurope"
    assert body["tags"] == TAGS and body["tags"][specs.OWNER_TAG] == OWNER.ref
    rules = {r["name"]: r["properties"] for r in body["properties"]["securityRules"]}
    assert set(rules) == {nsg_specs.QUIC_RULE, nsg_specs.ALTERNATIVE_RULE}
    assert rules[nsg_specs.ALTERNATIVE_RULE] == {
        "protocol": "Udp", "access": "Allow", "direction": "Inbound", "priority": 1001,
        "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "8443",
    }  # fmt: skip
    assert rules[nsg_specs.QUIC_RULE]["destinationPortRange"] == "443"
    assert len({r["priority"] for r in rules.values()}) == 2  # Azure refuses two rules with one priority
    assert nsg_specs.nsg_name(IDENTITY) == f"{IDENTITY.vm_name}-nsg"
    assert nsg_specs.nsg_id(IDENTITY).endswith(
        f"/providers/Microsoft.Network/networkSecurityGroups/{IDENTITY.vm_name}-nsg"
    )


def as_azure_returns(group: network.NetworkSecurityGroup, **extra: object) -> network.NetworkSecurityGroup:
    body = group.as_dict()
    body.update({"id": nsg_specs.nsg_id(IDENTITY), "name": nsg_specs.nsg_name(IDENTITY), "etag": 'W/"1"'})
    body["properties"].update(
        {"provisioningState": "Succeeded", "defaultSecurityRules": [{"name": "DenyAllInBound"}]}
    )
    body.update(extra)
    return network.NetworkSecurityGroup(body)


def test_nothing_is_put_when_azure_matches() -> None:
    observed = as_azure_returns(nsg_specs.nsg_parameters(IDENTITY, {**TAGS, "policy": "x"}, PORTS))
    assert nsg_specs.nsg_update(observed, TAGS, PORTS) is None


def test_a_changed_port_replaces_our_rule_and_keeps_others() -> None:
    observed = as_azure_returns(nsg_specs.nsg_parameters(IDENTITY, TAGS, nsg_specs.SmbPorts(443, 9443)))
    rdp = {"name": "rdp", "properties": {"protocol": "Tcp", "access": "Allow", "direction": "Inbound",
                                         "priority": 300, "destinationPortRange": "3389"}}  # fmt: skip
    body = observed.as_dict()
    body["properties"]["securityRules"].append(rdp)
    update = nsg_specs.nsg_update(network.NetworkSecurityGroup(body), TAGS, PORTS)
    assert update is not None
    rules = {r["name"]: r["properties"] for r in update.as_dict()["properties"]["securityRules"]}
    assert rules[nsg_specs.ALTERNATIVE_RULE]["destinationPortRange"] == "8443"
    assert rules["rdp"]["destinationPortRange"] == "3389"
    assert "defaultSecurityRules" not in update.as_dict()["properties"]


def test_a_rule_edited_by_hand_is_corrected_and_missing_tags_restored() -> None:
    body = as_azure_returns(nsg_specs.nsg_parameters(IDENTITY, TAGS, PORTS)).as_dict()
    body["properties"]["securityRules"][1]["properties"]["access"] = "Deny"
    body["tags"] = {"env": "prod", "policy": "x"}
    update = nsg_specs.nsg_update(network.NetworkSecurityGroup(body), TAGS, PORTS)
    assert update is not None
    rules = {r["name"]: r["properties"] for r in update.as_dict()["properties"]["securityRules"]}
    assert rules[nsg_specs.ALTERNATIVE_RULE]["access"] == "Allow"
    assert update.tags == {**TAGS, "policy": "x"}


def nic(group_id: str | None) -> network.NetworkInterface:
    desired = specs.nic_parameters(IDENTITY, SERVERS, TAGS)
    body = desired.as_dict()
    if group_id:
        body["properties"]["networkSecurityGroup"] = {"id": group_id}
    return network.NetworkInterface(body)


def test_the_nic_refers_to_our_group_and_lets_go_only_of_ours() -> None:
    ours = nsg_specs.nsg_id(IDENTITY)
    theirs = ours.replace("-nsg", "-hand-made")
    attach = nsg_specs.nic_nsg_update(nic(None), ours, ours)
    assert attach is not None and attach.properties.network_security_group.id == ours
    assert attach.properties.ip_configurations[0].properties.subnet.id == SERVERS  # the rest kept
    assert nsg_specs.nic_nsg_update(nic(ours.upper()), ours, ours) is None  # ARM ids compare case-blind
    assert nsg_specs.nic_nsg_update(nic(theirs), ours, ours) is not None  # ours is needed there
    detach = nsg_specs.nic_nsg_update(nic(ours), None, ours)
    assert detach is not None and detach.properties.network_security_group is None
    assert nsg_specs.nic_nsg_update(nic(theirs), None, ours) is None  # not ours: left alone
    assert nsg_specs.nic_nsg_update(nic(None), None, ours) is None
