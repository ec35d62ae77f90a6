"""Microsoft.Network: network security groups (PUT/GET/DELETE), and what they admit.

A NIC refers to one through ``properties.networkSecurityGroup.id`` (an unknown one is
``InvalidResourceReference``); the group lists the NICs that use it (``networkInterfaces``, read-only), and a
group still used cannot be deleted (``InUseNetworkSecurityGroupCannotBeDeleted``). Security rules are checked
as Azure checks them (learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules):
priority 100–4096 and unique per direction, protocol, access and direction from their sets. The group
carries Azure's six default rules (``defaultSecurityRules``). ``admits_udp`` answers whether a NIC's group
lets an inbound UDP datagram to a port through, for the simulated SMB over QUIC endpoint; it evaluates the
custom rules by priority and treats address prefixes as "any" (the simulator has one client: loopback).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from . import errors, limits, lro
from .context import Reply, RequestContext
from .network import NETWORK, _network_operation
from .world import World, check_location, check_location_unchanged, key, resource_id

NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")
ACCESSES = ("Allow", "Deny")
DIRECTIONS = ("Inbound", "Outbound")

# Azure's default rules (network-security-groups-overview#default-security-rules), lowest precedence.
_DEFAULTS = (
    ("AllowVnetInBound", "Inbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowAzureLoadBalancerInBound", "Inbound", 65001, "AzureLoadBalancer", "*", "Allow"),
    ("DenyAllInBound", "Inbound", 65500, "*", "*", "Deny"),
    ("AllowVnetOutBound", "Outbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowInternetOutBound", "Outbound", 65001, "*", "Internet", "Allow"),
    ("DenyAllOutBound", "Outbound", 65500, "*", "*", "Deny"),
)


def _nsg_id(world: World, sub: str, rg: str, name: str) -> str:
    return resource_id(sub, world.resource_group(sub, rg)["name"], NETWORK, "networkSecurityGroups", name)


def _invalid(message: str) -> errors.ArmError:
    return errors.ArmError(400, "SecurityRuleParameterContainsUnsupportedValue", message)


def _rule(
    nsg_id: str, rule_in: dict[str, Any], seen: set[tuple[str, int]], names: set[str]
) -> dict[str, Any]:
    name = rule_in.get("name")
    if not name or name in names:
        raise errors.ArmError(
            400, "InvalidRequestFormat", f"Security rule name missing or repeated in {nsg_id}."
        )
    names.add(name)
    rule_id = f"{nsg_id}/securityRules/{name}"
    props = copy.deepcopy(rule_in.get("properties") or {})
    props.pop("provisioningState", None)
    for field, allowed in (("protocol", PROTOCOLS), ("access", ACCESSES), ("direction", DIRECTIONS)):
        if props.get(field) not in allowed:
            raise _invalid(f"Security rule {rule_id} has invalid value {props.get(field)!r} for {field}: "
                           f"allowed values are {', '.join(allowed)}.")  # fmt: skip
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise errors.ArmError(
            400, "SecurityRuleInvalidPriority",
            f"Security rule {rule_id} has invalid Priority. Value provided: {priority}. "
            "Allowed range 100-4096.",
        )  # fmt: skip
    if (props["direction"], priority) in seen:
        raise errors.ArmError(
            400, "SecurityRulesInvalidPriorityConflict",
            f"Rules {rule_id} in security group {nsg_id} have the same Priority {priority} and Direction "
            f"{props['direction']}.",
        )  # fmt: skip
    seen.add((props["direction"], priority))
    props.setdefault("sourcePortRange", "*")
    props.setdefault("sourceAddressPrefix", "*")
    props.setdefault("destinationAddressPrefix", "*")
    if not props.get("destinationPortRange") and not props.get("destinationPortRanges"):
        raise _invalid(f"Security rule {rule_id} has no destinationPortRange.")
    return {"name": name, "id": rule_id, "etag": _etag(), "type": RULE_TYPE,
            "properties": {"provisioningState": "Succeeded", **props}}  # fmt: skip


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _defaults(nsg_id: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "id": f"{nsg_id}/defaultSecurityRules/{n}", "type": f"{NSG_TYPE}/defaultSecurityRules",
         "properties": {"provisioningState": "Succeeded", "protocol": "*", "sourcePortRange": "*",
                        "destinationPortRange": "*", "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
                        "access": access, "priority": prio, "direction": direction}}
        for n, direction, prio, src, dst, access in _DEFAULTS
    ]  # fmt: skip


def _with_users(world: World, nsg: dict[str, Any]) -> dict[str, Any]:
    """The group as ARM returns it: with the NICs that refer to it."""
    doc = copy.deepcopy(nsg)
    users = [{"id": nic["id"]} for nic in world.nics.values() if key(_ref(nic) or "") == key(nsg["id"])]
    if users:
        doc["properties"]["networkInterfaces"] = users
    return doc


def _ref(nic: dict[str, Any]) -> str | None:
    return (nic["properties"].get("networkSecurityGroup") or {}).get("id")


def get_nsg(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    nsg = ctx.world.nsgs.get(key(_nsg_id(ctx.world, sub, rg, name)))
    if nsg is None:
        raise errors.resource_not_found(NSG_TYPE, name, rg)
    return Reply(200, _with_users(ctx.world, nsg))


def put_nsg(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    body = ctx.body_object()
    nsg_id = _nsg_id(world, sub, rg, name)
    existing = world.nsgs.get(key(nsg_id))
    if existing is None:
        limits.check_network_name(name)
    limits.check_tags(body.get("tags"))
    location = check_location(body.get("location"), NSG_TYPE)
    check_location_unchanged(existing, location, rg)
    props_in = body.get("properties") or {}
    seen: set[tuple[str, int]] = set()
    names: set[str] = set()
    rules = [_rule(nsg_id, r, seen, names) for r in props_in.get("securityRules") or []]
    old_props = (existing or {}).get("properties", {})
    nsg = {
        "name": name, "id": nsg_id, "etag": _etag(), "type": NSG_TYPE, "location": location,
        "tags": body.get("tags") or {},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": old_props.get("resourceGuid", str(uuid.uuid4())),
            "securityRules": rules,
            "defaultSecurityRules": _defaults(nsg_id),
        },
    }  # fmt: skip
    world.nsgs[key(nsg_id)] = nsg
    world.touch()
    op = _network_operation(ctx, sub, location, "network.put", nsg_id)
    return Reply(201 if existing is None else 200, _with_users(world, nsg), lro.lro_headers(ctx, op))


def delete_nsg(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    nsg = world.nsgs.get(key(_nsg_id(world, sub, rg, name)))
    if nsg is None:
        return Reply(204)
    users = [nic["id"] for nic in world.nics.values() if key(_ref(nic) or "") == key(nsg["id"])]
    if users:
        raise errors.ArmError(
            400, "InUseNetworkSecurityGroupCannotBeDeleted",
            f"Network security group {nsg['id']} cannot be deleted because it is in use by the following "
            f"resources: {', '.join(users)}. In order to delete the Network security group, remove the "
            "association with the resource(s).",
        )  # fmt: skip
    del world.nsgs[key(nsg["id"])]
    world.touch()
    op = _network_operation(ctx, sub, nsg["location"], "network.delete", nsg["id"])
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


def check_nic_reference(world: World, nic_id: str, props: dict[str, Any]) -> None:
    """A NIC's ``networkSecurityGroup`` must name a group that exists; its id is stored as ARM spells it."""
    ref = (props.get("networkSecurityGroup") or {}).get("id")
    if not ref:
        props.pop("networkSecurityGroup", None)
        return
    nsg = world.nsgs.get(key(ref))
    if nsg is None:
        raise errors.invalid_resource_reference(ref, nic_id)
    props["networkSecurityGroup"] = {"id": nsg["id"]}


def _port_in(rule: dict[str, Any], port: int) -> bool:
    ranges = rule.get("destinationPortRanges") or [rule.get("destinationPortRange") or ""]
    for spec in ranges:
        if spec == "*":
            return True
        low, _, high = str(spec).partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def admits_udp(world: World, nic: dict[str, Any] | None, port: int) -> bool:
    """Whether the NIC's group lets an inbound UDP datagram to ``port`` in (no group: everything passes, as
    for a NIC without one in a subnet without one). The first matching custom rule by priority decides;
    none matching falls to DenyAllInBound (the client is on the Internet, not the virtual network)."""
    ref = _ref(nic) if nic is not None else None
    if not ref:
        return True
    nsg = world.nsgs.get(key(ref))
    if nsg is None:
        return True
    inbound = sorted(
        (r["properties"] for r in nsg["properties"]["securityRules"]
         if r["properties"]["direction"] == "Inbound" and r["properties"]["protocol"] in ("Udp", "*")),
        key=lambda p: p["priority"],
    )  # fmt: skip
    for rule in inbound:
        if _port_in(rule, port):
            return rule["access"] == "Allow"
    return False
