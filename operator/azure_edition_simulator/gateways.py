"""Microsoft.Network: virtual network gateways and their connections, read-only through ARM.

Why: Extended Network for Azure needs a site-to-site VPN (or ExpressRoute) gateway in the VM's virtual
network with a connection to on-premises; the operator reports whether there is one (it never creates
one). Gateways and connections are seeded and changed through the control API only, as subnets are;
ARM answers GET and list in the REST shape of ``VirtualNetworkGateways_Get``/``_List`` and
``VirtualNetworkGatewayConnections_Get``/``_List`` (``connectionStatus``: ``Unknown``, ``Connecting``,
``Connected``, ``NotConnected``), so azure-mgmt-network's real client reads them. A gateway lives in its
virtual network's ``GatewaySubnet`` and shows up in that subnet's ``ipConfigurations``, as in Azure.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from . import errors
from .context import Reply, RequestContext
from .world import World, key, normalize_location

NETWORK = "Microsoft.Network"
GATEWAY_TYPE = "Microsoft.Network/virtualNetworkGateways"
CONNECTION_TYPE = "Microsoft.Network/connections"
GATEWAY_SUBNET = "GatewaySubnet"
CONNECTION_STATUSES = ("Unknown", "Connecting", "Connected", "NotConnected")


def _rid(sub: str, rg: str, kind: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NETWORK}/{kind}/{name}"


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


# --- seeding and control -----------------------------------------------------------------------------------


def add_gateway(
    world: World, sub: str, rg: str, vnet: str, name: str, location: str, gateway_type: str = "Vpn"
) -> dict[str, Any]:
    """A gateway in ``vnet``'s GatewaySubnet (which must exist, as Azure requires)."""
    if gateway_type not in ("Vpn", "ExpressRoute"):
        raise ValueError(f"gatewayType must be Vpn or ExpressRoute, not {gateway_type!r}")
    subnet_id = _rid(sub, rg, "virtualNetworks", vnet) + f"/subnets/{GATEWAY_SUBNET}"
    if key(subnet_id) not in world.subnets:
        raise ValueError(f"virtual network {vnet} has no {GATEWAY_SUBNET}; add it first")
    gw_id = _rid(sub, rg, "virtualNetworkGateways", name)
    vpn = gateway_type == "Vpn"
    doc = {
        "name": name,
        "id": gw_id,
        "etag": _etag(),
        "type": GATEWAY_TYPE,
        "location": normalize_location(location),
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "packetCaptureDiagnosticState": "None",
            "enablePrivateIpAddress": False,
            "ipConfigurations": [
                {
                    "name": "default",
                    "id": f"{gw_id}/ipConfigurations/default",
                    "etag": _etag(),
                    "type": f"{GATEWAY_TYPE}/ipConfigurations",
                    "properties": {
                        "provisioningState": "Succeeded",
                        "privateIPAllocationMethod": "Dynamic",
                        "subnet": {"id": world.subnets[key(subnet_id)]["id"]},
                    },
                }
            ],
            "natRules": [],
            "enableBgpRouteTranslationForNat": False,
            "sku": {"name": "VpnGw1", "tier": "VpnGw1", "capacity": 2}
            if vpn
            else {"name": "Standard", "tier": "Standard", "capacity": 2},
            "gatewayType": gateway_type,
            "vpnType": "RouteBased",
            "enableBgp": False,
            "activeActive": False,
            "vpnGatewayGeneration": "Generation1" if vpn else "None",
        },
    }
    world.gateways[key(gw_id)] = doc
    world.touch()
    return doc


def add_connection(
    world: World, sub: str, rg: str, name: str, gateway: str, status: str = "Connected",
    connection_type: str = "IPsec", location: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A connection of ``gateway`` (a name in ``rg``, or an id) to on-premises."""
    gw_id = gateway if gateway.startswith("/") else _rid(sub, rg, "virtualNetworkGateways", gateway)
    gw = world.gateways.get(key(gw_id))
    if gw is None:
        raise ValueError(f"no virtual network gateway {gw_id}")
    _check_status(status)
    cn_id = _rid(sub, rg, "connections", name)
    peer = (
        {"localNetworkGateway2": {"id": _rid(sub, rg, "localNetworkGateways", f"lng-{name}")}}
        if connection_type == "IPsec"
        else {
            "peer": {
                "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NETWORK}/expressRouteCircuits/erc-{name}"
            }
        }
    )
    doc = {
        "name": name,
        "id": cn_id,
        "etag": _etag(),
        "type": CONNECTION_TYPE,
        "location": normalize_location(location or gw["location"]),
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "virtualNetworkGateway1": {"id": gw["id"]},
            **peer,
            "connectionType": connection_type,
            "connectionProtocol": "IKEv2",
            "routingWeight": 0,
            "enableBgp": False,
            "useLocalAzureIpAddress": False,
            "usePolicyBasedTrafficSelectors": False,
            "ipsecPolicies": [],
            "trafficSelectorPolicies": [],
            "connectionStatus": status,
            "ingressBytesTransferred": 0,
            "egressBytesTransferred": 0,
            "expressRouteGatewayBypass": False,
            "dpdTimeoutSeconds": 45,
            "connectionMode": "Default",
        },
    }
    world.connections[key(cn_id)] = doc
    world.touch()
    return doc


def _check_status(status: str) -> None:
    if status not in CONNECTION_STATUSES:
        raise ValueError(f"connectionStatus must be one of {list(CONNECTION_STATUSES)}, not {status!r}")


def set_connection_status(world: World, sub: str, rg: str, name: str, status: str) -> dict[str, Any]:
    _check_status(status)
    doc = world.connections.get(key(_rid(sub, rg, "connections", name)))
    if doc is None:
        raise ValueError(f"no connection {name} in {rg}")
    doc["properties"]["connectionStatus"] = status
    doc["etag"] = _etag()
    world.touch()
    return doc


def remove(world: World, sub: str, rg: str, kind: str, name: str) -> bool:
    """Delete a gateway (and its connections, as Azure requires them gone first) or a connection."""
    table = world.gateways if kind == "virtualNetworkGateways" else world.connections
    doc = table.pop(key(_rid(sub, rg, kind, name)), None)
    if doc is not None and table is world.gateways:
        for cn_key in [k for k, c in world.connections.items()
                       if key(c["properties"]["virtualNetworkGateway1"]["id"]) == key(doc["id"])]:  # fmt: skip
            del world.connections[cn_key]
    world.touch()
    return doc is not None


def gateway_ip_configurations(world: World, subnet_id: str) -> list[dict[str, str]]:
    """The gateways' IP configurations in a subnet (a GatewaySubnet lists them, as Azure's GET does)."""
    return [
        {"id": cfg["id"]}
        for gw in world.gateways.values()
        for cfg in gw["properties"]["ipConfigurations"]
        if key(cfg["properties"]["subnet"]["id"]) == key(subnet_id)
    ]


# --- ARM ---------------------------------------------------------------------------------------------------


def _in_rg(world: World, table: dict[str, dict[str, Any]], sub: str, rg: str) -> list[dict[str, Any]]:
    world.resource_group(sub, rg)
    prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
    return [copy.deepcopy(d) for k, d in sorted(table.items()) if k.startswith(prefix)]


def get_gateway(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    doc = ctx.world.gateways.get(key(_rid(sub, rg, "virtualNetworkGateways", name)))
    if doc is None:
        raise errors.resource_not_found(GATEWAY_TYPE, name, rg)
    return Reply(200, copy.deepcopy(doc))


def list_gateways(ctx: RequestContext, sub: str, rg: str) -> Reply:
    return Reply(200, {"value": _in_rg(ctx.world, ctx.world.gateways, sub, rg)})


def get_connection(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    doc = ctx.world.connections.get(key(_rid(sub, rg, "connections", name)))
    if doc is None:
        raise errors.resource_not_found(CONNECTION_TYPE, name, rg)
    return Reply(200, copy.deepcopy(doc))


def list_connections(ctx: RequestContext, sub: str, rg: str) -> Reply:
    return Reply(200, {"value": _in_rg(ctx.world, ctx.world.connections, sub, rg)})
