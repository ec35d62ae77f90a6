"""Microsoft.Network: network interfaces, public IP addresses and (registered) subnets.

Subnets are not created through ARM here: the world is seeded with a VNet and subnets, and tests add
more through the control API. A NIC that references an unknown subnet or public IP gets Network's
``InvalidResourceReference``; a NIC still used by a VM cannot be deleted (``NicInUse``); a public IP still
associated with a NIC cannot be deleted (``PublicIPAddressCannotBeDeleted``). Network PUTs complete
immediately in the ``instant`` profile (``provisioningState: Succeeded`` in the 201, as in the published
examples) but still carry ``Azure-AsyncOperation``; in the ``azure`` profile they show ``Updating`` for
2–10 s (scaled), and a deleted NIC or public IP stays readable as ``Deleting`` until its operation ends.
DELETEs answer 202 with ``Azure-AsyncOperation`` and ``Location``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import secrets
import uuid
from typing import Any

from . import errors, gateways, limits, lro, others
from .context import Reply, RequestContext
from .world import World, check_location, check_location_unchanged, key, resource_id

NETWORK = "Microsoft.Network"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
IPCONFIG_TYPE = "Microsoft.Network/networkInterfaces/ipConfigurations"


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _nic_id(world: World, sub: str, rg: str, name: str) -> str:
    return resource_id(sub, world.resource_group(sub, rg)["name"], NETWORK, "networkInterfaces", name)


def _pip_id(world: World, sub: str, rg: str, name: str) -> str:
    return resource_id(sub, world.resource_group(sub, rg)["name"], NETWORK, "publicIPAddresses", name)


def _network_operation(ctx: RequestContext, sub: str, location: str, kind: str, rid: str) -> dict[str, Any]:
    return ctx.world.new_operation(
        provider=NETWORK,
        subscription=sub,
        location=location,
        kind=kind,
        operation_name=ctx.operation,
        resource_id=rid,
        duration=ctx.settings.duration(kind),
    )


def _start_provisioning(ctx: RequestContext, doc: dict[str, Any]) -> None:
    """Azure profile: a network PUT shows ``Updating`` until its operation finishes (instant: Succeeded)."""
    if ctx.settings.timing.realistic:
        doc["properties"]["provisioningState"] = "Updating"
        for cfg in doc["properties"].get("ipConfigurations", []):
            cfg["properties"]["provisioningState"] = "Updating"


def _start_deleting(ctx: RequestContext, doc: dict[str, Any]) -> bool:
    """Azure profile: a deleted resource stays readable as ``Deleting`` until its operation finishes."""
    if not ctx.settings.timing.realistic:
        return False
    doc["properties"]["provisioningState"] = "Deleting"
    ctx.world.touch()
    return True


# --- network interfaces ------------------------------------------------------------------------------------


def get_nic(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    nic = ctx.world.nics.get(key(_nic_id(ctx.world, sub, rg, name)))
    if nic is None:
        raise errors.resource_not_found(NIC_TYPE, name, rg)
    return Reply(200, copy.deepcopy(nic))


def list_nics(ctx: RequestContext, sub: str, rg: str) -> Reply:
    ctx.world.resource_group(sub, rg)
    prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
    return Reply(
        200, {"value": [copy.deepcopy(n) for k, n in sorted(ctx.world.nics.items()) if k.startswith(prefix)]}
    )


def _ip_in_use(world: World, address: str, own_cfg_id: str) -> str | None:
    for nic in world.nics.values():
        for cfg in nic["properties"].get("ipConfigurations", []):
            if (
                key(cfg["id"]) != key(own_cfg_id)
                and cfg["properties"].get("privateIPAddress", "").split("/")[0] == address
            ):
                return cfg["id"]
    return None


def put_nic(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    body = ctx.body_object()
    nic_id = _nic_id(world, sub, rg, name)
    existing = world.nics.get(key(nic_id))
    if existing is None:
        limits.check_network_name(name)
    limits.check_tags(body.get("tags"))
    location = check_location(body.get("location"), NIC_TYPE)
    check_location_unchanged(existing, location, rg)
    props_in = copy.deepcopy(body.get("properties") or {})
    configs_in = props_in.pop("ipConfigurations", None) or []
    if not configs_in:
        # (wording: simulator)
        raise errors.ArmError(
            400,
            "InvalidRequestFormat",
            f"Network interface {nic_id} must have at least one IP configuration.",
        )
    old_configs = {
        key(c["id"]): c for c in (existing or {}).get("properties", {}).get("ipConfigurations", [])
    }
    primary_subnet = ((configs_in[0].get("properties") or {}).get("subnet") or {}).get("id")
    configs = []
    for index, cfg_in in enumerate(configs_in):
        cfg_name = cfg_in.get("name") or f"ipconfig{index + 1}"
        cfg_id = f"{nic_id}/ipConfigurations/{cfg_name}"
        cfg_props = copy.deepcopy(cfg_in.get("properties") or {})
        subnet_ref = (cfg_props.pop("subnet", None) or {}).get("id") or primary_subnet
        if not subnet_ref:
            # (wording: simulator)
            raise errors.ArmError(
                400, "InvalidRequestFormat", f"Subnet is required for IP configuration {cfg_id}."
            )
        subnet = world.subnets.get(key(subnet_ref))
        if subnet is None:
            raise errors.invalid_resource_reference(subnet_ref, nic_id)
        others.check_reference(ctx.settings, subnet, nic_id, "PutSubnetOperation")
        pip_ref = (cfg_props.pop("publicIPAddress", None) or {}).get("id")
        if pip_ref:
            pip = world.public_ips.get(key(pip_ref))
            if pip is None:
                raise errors.invalid_resource_reference(pip_ref, nic_id)
            others.check_reference(ctx.settings, pip, nic_id, "PutPublicIpAddressOperation")
            owner = (pip["properties"].get("ipConfiguration") or {}).get("id")
            if owner and key(owner) != key(cfg_id):
                raise errors.public_ip_in_use_attach(pip["id"], owner)
        method = cfg_props.pop("privateIPAllocationMethod", None) or "Dynamic"
        requested = cfg_props.pop("privateIPAddress", None)
        old = old_configs.get(key(cfg_id))
        if method == "Static" and requested:
            network = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
            if ipaddress.ip_address(requested) not in network:
                # (wording: simulator)
                raise errors.ArmError(
                    400,
                    "PrivateIPAddressNotInSubnet",
                    f"IP address {requested} does not belong to subnet {subnet['id']}.",
                )
            other = _ip_in_use(world, requested, cfg_id)
            if other:
                raise errors.ArmError(
                    400,
                    "PrivateIPAddressInUse",
                    f"IP configuration {cfg_id} is using the private IP address {requested} which is already "
                    f"allocated to resource {other}.",
                )
            address = requested
        elif old and key(old["properties"]["subnet"]["id"]) == key(subnet["id"]):
            address = old["properties"]["privateIPAddress"]
        else:
            address = world.allocate_private_ip(subnet["id"])
        for read_only in ("provisioningState",):
            cfg_props.pop(read_only, None)
        prefix_length = cfg_props.get("privateIPAddressPrefixLength")
        cfg_doc_props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "privateIPAddress": address.split("/")[0] + (f"/{prefix_length}" if prefix_length else ""),
            "privateIPAllocationMethod": method,
            "subnet": {"id": subnet["id"]},
            "primary": bool(cfg_props.pop("primary", index == 0)),
            "privateIPAddressVersion": cfg_props.pop("privateIPAddressVersion", "IPv4"),
            **cfg_props,
        }
        if pip_ref:
            cfg_doc_props["publicIPAddress"] = {"id": world.public_ips[key(pip_ref)]["id"]}
        configs.append(
            {
                "name": cfg_name,
                "id": cfg_id,
                "etag": _etag(),
                "type": IPCONFIG_TYPE,
                "properties": cfg_doc_props,
            }
        )
    dns = props_in.pop("dnsSettings", None) or {}
    old_props = (existing or {}).get("properties", {})
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "resourceGuid": old_props.get("resourceGuid", str(uuid.uuid4())),
        "ipConfigurations": configs,
        "dnsSettings": {
            "dnsServers": dns.get("dnsServers", []),
            "appliedDnsServers": [],
            "internalDomainNameSuffix": old_props.get("dnsSettings", {}).get(
                "internalDomainNameSuffix", f"{secrets.token_hex(8)}.ax.internal.cloudapp.net"
            ),
        },
        "enableAcceleratedNetworking": bool(props_in.pop("enableAcceleratedNetworking", False)),
        "disableTcpStateTracking": bool(props_in.pop("disableTcpStateTracking", False)),
        "enableIPForwarding": bool(props_in.pop("enableIPForwarding", False)),
        "vnetEncryptionSupported": False,
        "nicType": "Standard",
        "hostedWorkloads": [],
        "tapConfigurations": [],
        "auxiliaryMode": "None",
        "auxiliarySku": "None",
    }
    for read_only in ("provisioningState", "resourceGuid", "virtualMachine", "macAddress", "primary"):
        props_in.pop(read_only, None)
    from . import nsg  # nsg imports this module

    nsg.check_nic_reference(world, nic_id, props_in)
    props.update(props_in)
    for carried in ("virtualMachine", "macAddress", "primary"):
        if carried in old_props:
            props[carried] = old_props[carried]
    nic = {
        "name": name,
        "id": nic_id,
        "etag": _etag(),
        "type": NIC_TYPE,
        "location": location,
        "tags": body.get("tags") or {},
        "properties": props,
    }
    _reassociate_public_ips(world, existing, nic)
    _start_provisioning(ctx, nic)
    world.nics[key(nic_id)] = nic
    world.touch()
    op = _network_operation(ctx, sub, location, "network.put", nic_id)
    return Reply(201 if existing is None else 200, copy.deepcopy(nic), lro.lro_headers(ctx, op))


def _pip_refs(nic: dict[str, Any] | None) -> dict[str, str]:
    """{pip key: ip configuration id} of a NIC."""
    out: dict[str, str] = {}
    for cfg in (nic or {}).get("properties", {}).get("ipConfigurations", []):
        pip_id = (cfg["properties"].get("publicIPAddress") or {}).get("id")
        if pip_id:
            out[key(pip_id)] = cfg["id"]
    return out


def _reassociate_public_ips(world: World, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    old_refs, new_refs = _pip_refs(old), _pip_refs(new)
    for pip_key in set(old_refs) - set(new_refs):
        pip = world.public_ips.get(pip_key)
        if pip is not None:
            pip["properties"].pop("ipConfiguration", None)
            if pip["properties"].get("publicIPAllocationMethod") == "Dynamic":
                pip["properties"].pop("ipAddress", None)
    attached_vm = (new or {}).get("properties", {}).get("virtualMachine")
    vm = world.vms.get(key(attached_vm["id"])) if attached_vm else None
    vm_running = vm is not None and vm["properties"].get("provisioningState") in ("Succeeded", "Updating")
    for pip_key, cfg_id in new_refs.items():
        pip = world.public_ips[pip_key]
        pip["properties"]["ipConfiguration"] = {"id": cfg_id}
        if vm_running and not pip["properties"].get("ipAddress"):
            pip["properties"]["ipAddress"] = world.allocate_public_ip()


def remove_nic(world: World, nic: dict[str, Any]) -> None:
    """Delete a NIC and release its public IP associations."""
    _reassociate_public_ips(world, nic, None)
    world.nics.pop(key(nic["id"]), None)
    world.touch()


def delete_nic(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    nic = ctx.world.nics.get(key(_nic_id(ctx.world, sub, rg, name)))
    if nic is None:
        return Reply(204)
    vm_ref = nic["properties"].get("virtualMachine")
    if vm_ref:
        raise errors.nic_in_use(nic["id"], vm_ref["id"])
    if not _start_deleting(ctx, nic):
        remove_nic(ctx.world, nic)
    op = _network_operation(ctx, sub, nic["location"], "network.delete", nic["id"])
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


# --- public IP addresses -----------------------------------------------------------------------------------


def get_public_ip(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    pip = ctx.world.public_ips.get(key(_pip_id(ctx.world, sub, rg, name)))
    if pip is None:
        raise errors.resource_not_found(PIP_TYPE, name, rg)
    return Reply(200, copy.deepcopy(pip))


def list_public_ips(ctx: RequestContext, sub: str, rg: str) -> Reply:
    ctx.world.resource_group(sub, rg)
    prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
    value = [copy.deepcopy(p) for k, p in sorted(ctx.world.public_ips.items()) if k.startswith(prefix)]
    return Reply(200, {"value": value})


def put_public_ip(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    body = ctx.body_object()
    pip_id = _pip_id(world, sub, rg, name)
    existing = world.public_ips.get(key(pip_id))
    if existing is None:
        limits.check_network_name(name)
    limits.check_tags(body.get("tags"))
    location = check_location(body.get("location"), PIP_TYPE)
    check_location_unchanged(existing, location, rg)
    sku = body.get("sku") or (existing or {}).get("sku") or {"name": "Basic", "tier": "Regional"}
    sku = {"tier": "Regional", **sku}
    props_in = copy.deepcopy(body.get("properties") or {})
    for read_only in ("provisioningState", "resourceGuid", "ipAddress", "ipConfiguration"):
        props_in.pop(read_only, None)
    method = props_in.pop("publicIPAllocationMethod", None) or (
        "Static" if sku["name"] == "Standard" else "Dynamic"
    )
    old_props = (existing or {}).get("properties", {})
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "resourceGuid": old_props.get("resourceGuid", str(uuid.uuid4())),
        "publicIPAddressVersion": props_in.pop("publicIPAddressVersion", "IPv4"),
        "publicIPAllocationMethod": method,
        "idleTimeoutInMinutes": props_in.pop("idleTimeoutInMinutes", 4),
        "ipTags": props_in.pop("ipTags", []),
        "ddosSettings": props_in.pop("ddosSettings", {"protectionMode": "VirtualNetworkInherited"}),
        **props_in,
    }
    _dns_label(props, location)
    if "ipConfiguration" in old_props:
        props["ipConfiguration"] = old_props["ipConfiguration"]
    if old_props.get("ipAddress"):
        props["ipAddress"] = old_props["ipAddress"]
    elif method == "Static":
        props["ipAddress"] = world.allocate_public_ip()
    pip = {
        "name": name,
        "id": pip_id,
        "etag": _etag(),
        "location": location,
        "tags": body.get("tags") or {},
        "zones": body.get("zones", (existing or {}).get("zones", [])),
        "properties": props,
        "sku": sku,
        "type": PIP_TYPE,
    }
    if not pip["zones"]:
        pip.pop("zones")
    _start_provisioning(ctx, pip)
    world.public_ips[key(pip_id)] = pip
    world.touch()
    op = _network_operation(ctx, sub, location, "network.put", pip_id)
    return Reply(201 if existing is None else 200, copy.deepcopy(pip), lro.lro_headers(ctx, op))


_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


def _dns_label(props: dict[str, Any], location: str) -> None:
    """``dnsSettings.domainNameLabel``: Azure's label rule, and the FQDN it gives
    (``<label>.<location>.cloudapp.azure.com``, learn.microsoft.com/azure/virtual-network/ip-services/
    public-ip-addresses#dns-name-label)."""
    dns = props.get("dnsSettings")
    if not dns or not dns.get("domainNameLabel"):
        props.pop("dnsSettings", None)
        return
    label = str(dns["domainNameLabel"])
    if not _DNS_LABEL.match(label):
        raise errors.ArmError(
            400, "InvalidDomainNameLabel",
            f"The domain name label {label} is invalid. It must conform to the following regular expression: "
            "^[a-z][a-z0-9-]{1,61}[a-z0-9]$.",
        )  # fmt: skip
    props["dnsSettings"] = {**dns, "fqdn": f"{label}.{location}.cloudapp.azure.com"}


def delete_public_ip(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    pip = ctx.world.public_ips.get(key(_pip_id(ctx.world, sub, rg, name)))
    if pip is None:
        return Reply(204)
    owner = pip["properties"].get("ipConfiguration")
    if owner:
        raise errors.public_ip_in_use_delete(pip["id"], owner["id"])
    if not _start_deleting(ctx, pip):
        del ctx.world.public_ips[key(pip["id"])]
        ctx.world.touch()
    op = _network_operation(ctx, sub, pip["location"], "network.delete", pip["id"])
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


# --- subnets --------------------------------------------------------------------------------------------


def get_subnet(ctx: RequestContext, sub: str, rg: str, vnet: str, name: str) -> Reply:
    rg_name = ctx.world.resource_group(sub, rg)["name"]
    subnet_id = f"/subscriptions/{sub}/resourceGroups/{rg_name}/providers/{NETWORK}/virtualNetworks/{vnet}/subnets/{name}"
    subnet = ctx.world.subnets.get(key(subnet_id))
    if subnet is None:
        raise errors.ArmError(
            404,
            "NotFound",
            f"Resource {subnet_id} not found.",
        )
    doc = copy.deepcopy(subnet)
    doc.pop("location", None)
    users = [
        {"id": cfg["id"]}
        for nic in ctx.world.nics.values()
        for cfg in nic["properties"].get("ipConfigurations", [])
        if key(cfg["properties"]["subnet"]["id"]) == key(subnet_id)
    ]
    users += gateways.gateway_ip_configurations(ctx.world, subnet_id)
    if users:
        doc["properties"]["ipConfigurations"] = users
    return Reply(200, doc)


def complete(world: World, op: dict[str, Any]) -> None:
    """Finish a network operation: a PUT's resource turns Succeeded (or Failed), a delete's goes away.

    In the instant profile both took effect when accepted, and there is nothing left to do here.
    """
    failure = op.get("injectedFailure")
    rid = key(op["resourceId"])
    table = next((t for t in (world.nics, world.nsgs) if rid in t), world.public_ips)
    doc = table.get(rid)
    if doc is not None and op["kind"] == "network.delete" and not failure:
        if table is world.nics:
            remove_nic(world, doc)
        else:
            del table[rid]
    elif doc is not None and op["kind"] == "network.put":
        newer = any(
            o is not op
            and o["status"] == "InProgress"
            and key(o["resourceId"]) == rid
            and o["kind"] == op["kind"]
            for o in world.operations.values()
        )
        if not newer:
            state = "Failed" if failure else "Succeeded"
            doc["properties"]["provisioningState"] = state
            for cfg in doc["properties"].get("ipConfigurations", []):
                cfg["properties"]["provisioningState"] = state
    elif doc is not None and failure:  # a failed delete leaves the resource as it was
        doc["properties"]["provisioningState"] = "Succeeded"
    world.finish_operation(op, "Failed" if failure else "Succeeded", error=failure)
