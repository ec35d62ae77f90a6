"""The simulator's NSG evaluation for the SMB over QUIC endpoint: the first matching inbound rule by
priority decides, nothing matching falls to DenyAllInBound, no group filters nothing."""

from __future__ import annotations

from typing import Any

from azure_edition_simulator.nsg import admits_udp
from azure_edition_simulator.world import World

NSG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg"


def rule(port: str, priority: int, access: str = "Allow", protocol: str = "Udp",
         direction: str = "Inbound") -> dict[str, Any]:  # fmt: skip
    return {"properties": {"protocol": protocol, "destinationPortRange": port, "priority": priority,
                           "access": access, "direction": direction}}  # fmt: skip


def world_with(*rules: dict[str, Any]) -> World:
    world = World()
    world.nsgs[NSG.lower()] = {"id": NSG, "properties": {"securityRules": list(rules)}}
    return world


NIC = {"properties": {"networkSecurityGroup": {"id": NSG}}}


def test_an_allow_rule_admits_its_port_only() -> None:
    world = world_with(rule("8443", 1000))
    assert admits_udp(world, NIC, 8443)
    assert not admits_udp(world, NIC, 443)


def test_the_lower_priority_number_wins() -> None:
    world = world_with(rule("8000-9000", 200), rule("8443", 100, access="Deny"))
    assert not admits_udp(world, NIC, 8443)
    assert admits_udp(world, NIC, 8444)
    assert not admits_udp(world, NIC, 9001)


def test_tcp_and_outbound_rules_do_not_admit_udp() -> None:
    world = world_with(rule("8443", 100, protocol="Tcp"), rule("8443", 110, direction="Outbound"))
    assert not admits_udp(world, NIC, 8443)
    assert admits_udp(world_with(rule("*", 100, protocol="*")), NIC, 8443)


def test_no_group_filters_nothing() -> None:
    assert admits_udp(World(), {"properties": {}}, 8443)
    assert admits_udp(World(), None, 8443)
