"""The thin shell of Extended Network's checks: read-only GETs, cached where the facts are static.

Static facts (Resource SKUs of a region, the extended subnet, the GatewaySubnet and its gateway) change
when a person changes the network, not between two checks: they are read once and kept for
``STATIC_TTL_SECONDS`` (or until the spec points elsewhere). The connection's status and the extended
NIC's IP forwarding can change at any moment: they are read each check round (one list, one GET).
Nothing here writes: the operator reports a missing gateway, it never creates one.

``preflight`` runs at reconcile before anything is PUT; ``PrerequisitesNotMet`` carries the
``ExtendedNetworkReady`` condition that says what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from .. import extended_network as xn
from ..api.v1alpha1 import AzureEditionVMSpec
from ..conditions import Condition
from ..fresh import Fresh
from ..images import Capability
from .errors import from_exception

log = logging.getLogger(__name__)

STATIC_TTL_SECONDS = 3600.0
"""How long static network facts are trusted; a person who adds a gateway is seen within this time at the
latest (a connection's status, which does change by itself, is read every round)."""


class PrerequisitesNotMet(Exception):
    """Extended Network cannot work with this spec: refused before any PUT."""

    def __init__(self, condition: Condition) -> None:
        super().__init__(condition.message)
        self.condition = condition


def _wire(model: Any) -> dict[str, Any] | None:
    return model.as_dict() if model is not None else None


async def _get_or_none(call: Callable[[], Awaitable[Any]]) -> dict[str, Any] | None:
    """A GET whose 404 means "not there" (an answer); other failures propagate as azure-core raised them
    (the check round and ``preflight`` classify them)."""
    try:
        return _wire(await call())
    except ResourceNotFoundError:
        return None
    except HttpResponseError as err:
        if err.status_code == 404:
            return None
        raise


# Resource SKUs per (subscription, region): shared by every VM there
SIZES: Fresh[Any] = Fresh(STATIC_TTL_SECONDS)
FACTS: Fresh[Any] = Fresh(STATIC_TTL_SECONDS)  # subnets and gateways per id


def requested(spec: AzureEditionVMSpec) -> bool:
    return Capability.EXTENDED_NETWORK in spec.capabilities and spec.extended_network is not None


async def sizes(compute: Any, subscription_id: str, location: str) -> dict[str, xn.Size]:
    """Resource SKUs - List for the region (one paged list per subscription and region per TTL)."""

    async def read() -> dict[str, xn.Size]:
        try:
            skus = [s.as_dict() async for s in compute.resource_skus.list(filter=f"location eq '{location}'")]
        except HttpResponseError as err:
            if err.status_code != 403:
                raise
            # Resource SKUs are read at subscription scope; an identity with roles on the resource group
            # only may not. Then the size is not judged (cached as unknown), rather than nothing created.
            log.warning("cannot read Resource SKUs of %s in %s (%s): the VM size's nested virtualization "
                        "is not checked", subscription_id, location, err.error.code if err.error else 403)  # fmt: skip
            return {}
        return xn.sizes_in(skus, location)

    return await SIZES.get(("skus", subscription_id.lower(), location.lower()), read)


async def subnet(network: Any, subnet_id: str) -> dict[str, Any] | None:
    """Subnets - Get by id (``None``: it does not exist), cached."""
    parts = subnet_id.strip("/").split("/")
    rg, vnet, name = parts[3], parts[7], parts[9]
    return await FACTS.get(
        ("subnet", subnet_id.lower()), lambda: _get_or_none(lambda: network.subnets.get(rg, vnet, name))
    )


async def gateway(network: Any, gateway_id: str) -> dict[str, Any] | None:
    parts = gateway_id.strip("/").split("/")
    return await FACTS.get(
        ("gateway", gateway_id.lower()),
        lambda: _get_or_none(lambda: network.virtual_network_gateways.get(parts[3], parts[7])),
    )


async def connections(network: Any, gateway_id: str) -> list[dict[str, Any]]:
    """The connections in the gateway's resource group (one list, read every round: their status moves)."""
    rg = gateway_id.strip("/").split("/")[3]
    return [c.as_dict() async for c in network.virtual_network_gateway_connections.list(rg)]


async def preflight(clients: Any, spec: AzureEditionVMSpec) -> None:
    """Before any PUT: the size nests and the extended subnet is usable, else ``PrerequisitesNotMet``.

    Cached reads: in steady state this makes no Azure call at all."""
    if not requested(spec):
        return
    assert spec.extended_network is not None
    azure = spec.azure
    ext_id = spec.extended_network.extended_subnet_id
    try:
        extended = None
        if xn.check_subnet_ids(azure.subnet_id, ext_id) is None:
            try:
                extended = await subnet(clients.network(azure.subscription_id), ext_id)
            except HttpResponseError as err:
                if err.status_code != 403:
                    raise
                # Not allowed to read it (joining may still be): the NIC's PUT gets Azure's own answer.
                log.warning("cannot read subnet %s: its delegations are not checked", ext_id)
        offered = await sizes(clients.compute(azure.subscription_id), azure.subscription_id, azure.location)
    except AzureError as err:  # the reconcile pass reports these as it does any Azure failure
        raise from_exception(err) from err
    problems = xn.check_before_put(azure.subnet_id, ext_id, azure.vm_size, azure.location, offered, extended)
    if problems:
        raise PrerequisitesNotMet(xn.extended_network_condition(problems))


async def network_problems(
    compute: Any, network: Any, spec: AzureEditionVMSpec, extended_nic: str
) -> list[xn.Problem | None]:
    """Every network prerequisite, in the order a person fixes them: cached static facts, then the
    connections and the extended NIC as they are now."""
    assert spec.extended_network is not None
    azure = spec.azure
    ext_id = spec.extended_network.extended_subnet_id
    ids = xn.check_subnet_ids(azure.subnet_id, ext_id)
    problems: list[xn.Problem | None] = [
        xn.check_size(
            azure.vm_size, azure.location, await sizes(compute, azure.subscription_id, azure.location)
        ),
        ids,
    ]
    if ids is None:
        problems.append(xn.check_extended_subnet(await subnet(network, ext_id)))
    gw_subnet = await subnet(network, xn.gateway_subnet_id(azure.subnet_id))
    gw_ids = xn.gateway_ids(gw_subnet)
    gw = await gateway(network, gw_ids[0]) if gw_ids else None
    links = await connections(network, str(gw["id"])) if gw else []
    vnet_name = xn.vnet_of(azure.subnet_id).rsplit("/", 1)[-1]
    problems.append(xn.check_gateway(vnet_name, gw_subnet, gw, links))
    nic = await _get_or_none(lambda: network.network_interfaces.get(azure.resource_group, extended_nic))
    problems.append(xn.check_nic(nic))
    return problems


def forget_static() -> None:
    """Drop cached static facts (tests; an operator restart does the same)."""
    SIZES.forget()
    FACTS.forget()
