"""VMs made outside the operator: what the portal, Terraform or Bicep leaves in a subscription.

The brownfield cases (adopt, observe, import; issue #24) need VMs the operator did not create: any name,
any catalog image, with or without Hotpatch patch settings, a NIC (and perhaps a public IP) named the way
the portal names them, and arbitrary tags or none. :func:`create` builds the ARM request bodies such a tool
sends and runs them through the very handlers an ARM PUT reaches (``network.put_public_ip``,
``network.put_nic``, ``compute.put_vm``), then finishes their operations at once: the result is what a
PUT leaves once provisioned (GET, list, instance view, patch status, assess and Run Command all work), with
no entry in the request log or the throttling buckets, so a test's counts are the operator's alone.

Control API: ``POST /_simulator/outside-vms`` with :class:`OutsideVM`'s fields (camelCase), answered
with the VM as GET returns it.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import compute, images, network, throttle
from .context import RequestContext
from .world import DEFAULT_RESOURCE_GROUP, DEFAULT_VNET, Settings, World, key

API_VERSION_COMPUTE = "2024-07-01"
API_VERSION_NETWORK = "2024-05-01"
DEFAULT_SUBNET = "servers"
DEFAULT_SIZE = "Standard_D2as_v5"

# What the portal's "Hotpatch" checkbox (and azurerm's hotpatching_enabled) sends: Azure-orchestrated
# patching with platform safety checks (Hotpatch requires them).
HOTPATCH_SETTINGS: dict[str, Any] = {
    "patchMode": "AutomaticByPlatform",
    "enableHotpatching": True,
    "assessmentMode": "AutomaticByPlatform",
    "automaticByPlatformSettings": {
        "rebootSetting": "IfRequired",
        "bypassPlatformSafetyChecksOnUserSchedule": False,
    },
}
# Without Hotpatch: Windows Automatic Updates, which every image accepts (a Hotpatch-capable image still
# needs patchSettings spelled out: "PatchSettings must be specified for hotpatch compatible VMs").
PLAIN_SETTINGS: dict[str, Any] = {
    "patchMode": "AutomaticByOS",
    "enableHotpatching": False,
    "assessmentMode": "ImageDefault",
}


@dataclass(frozen=True)
class OutsideVM:
    """One VM as someone else would have created it. Only ``name`` and ``sku`` are required."""

    name: str
    sku: str
    resource_group: str = DEFAULT_RESOURCE_GROUP
    subscription_id: str | None = None  # the simulator's own by default
    location: str | None = None  # the resource group's by default
    version: str = "latest"
    vm_size: str = DEFAULT_SIZE
    hotpatch: bool = False
    patch_settings: dict[str, Any] | None = None  # overrides ``hotpatch`` when given (any model)
    subnet_id: str | None = None  # the seeded ``servers`` subnet by default
    public_ip: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # on the VM, its NIC and its public IP
    nic_name: str | None = None  # the portal's "<vm><3 digits>" by default
    public_ip_name: str | None = None  # the portal's "<vm>-ip" by default
    computer_name: str | None = None
    admin_username: str = "azureadmin"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutsideVM:
        """From the control API's camelCase body; unknown fields are refused (a typo must not pass)."""
        names = {f.name: f.name for f in dataclasses.fields(cls)}
        camel = {_camel(n): n for n in names}
        unknown = sorted(set(data) - set(camel))
        if unknown:
            raise ValueError(f"unknown outside VM fields {unknown}; known: {sorted(camel)}")
        if not data.get("name") or not data.get("sku"):
            raise ValueError("an outside VM needs at least 'name' and 'sku' (an image SKU of the catalog)")
        return cls(**{camel[k]: v for k, v in data.items()})

    def patch_model(self) -> dict[str, Any]:
        return (
            dict(self.patch_settings)
            if self.patch_settings is not None
            else (dict(HOTPATCH_SETTINGS) if self.hotpatch else dict(PLAIN_SETTINGS))
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _ctx(
    world: World,
    settings: Settings,
    throttler: throttle.Throttler,
    origin: str,
    api_version: str,
    operation: str,
    body: dict[str, Any],
) -> RequestContext:
    return RequestContext(
        world=world,
        settings=settings,
        throttler=throttler,
        origin=origin,
        api_version=api_version,
        query={},
        body=body,
        operation=operation,
    )


def _finish_new_operations(world: World, before: set[str]) -> None:
    """Complete the operations the requests started: the VM was made a while ago, it is provisioned."""
    for op_id in [o for o in world.operations if o not in before]:
        op = world.operations[op_id]
        if op["status"] == "InProgress":
            (compute.complete if op["provider"] == compute.COMPUTE else network.complete)(world, op)


def create(
    world: World, settings: Settings, origin: str, default_subscription: str, spec: OutsideVM
) -> dict[str, Any]:
    """Make ``spec``'s VM (public IP, NIC, VM) through the ARM handlers; the VM as GET returns it."""
    sub = spec.subscription_id or default_subscription
    world.subscription(sub)
    rg_key = f"{sub}/{spec.resource_group}".lower()
    if rg_key not in world.resource_groups:
        world.add_resource_group(sub, spec.resource_group, spec.location or _seed_location(world, sub))
    rg = world.resource_group(sub, spec.resource_group)
    location = spec.location or rg["location"]
    if images.find_image(images.WINDOWS_SERVER_PUBLISHER, images.WINDOWS_SERVER_OFFER, spec.sku) is None:
        raise ValueError(f"sku {spec.sku!r} is not in the simulator's image catalog (images.py)")
    subnet_id = spec.subnet_id or (
        f"/subscriptions/{sub}/resourceGroups/{DEFAULT_RESOURCE_GROUP}/providers/Microsoft.Network/"
        f"virtualNetworks/{DEFAULT_VNET}/subnets/{DEFAULT_SUBNET}"
    )
    # A tool's requests are not the operator's: no eventual-consistency refusals, no throttling, no log.
    quiet = dataclasses.replace(
        settings, consistency_rate=0.0, consistency_not_found=False, authorization_delays=[], meters={}
    )
    throttler = throttle.Throttler(throttle.ThrottleConfig(enabled=False))
    before = set(world.operations)
    nic_name = spec.nic_name or f"{spec.name.lower()}{secrets.randbelow(900) + 100}"
    ip_config: dict[str, Any] = {"subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic"}
    if spec.public_ip:
        pip_name = spec.public_ip_name or f"{spec.name}-ip"
        pip_body = {
            "location": location,
            "tags": dict(spec.tags),
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
        }
        reply = network.put_public_ip(
            _ctx(
                world,
                quiet,
                throttler,
                origin,
                API_VERSION_NETWORK,
                "PublicIPAddresses_CreateOrUpdate",
                pip_body,
            ),
            sub,
            spec.resource_group,
            pip_name,
        )
        ip_config["publicIPAddress"] = {"id": reply.body["id"]}
        _finish_new_operations(world, before)  # Succeeded before the NIC refers to it (azure profile)
    nic_body = {
        "location": location,
        "tags": dict(spec.tags),
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]},
    }
    nic = network.put_nic(
        _ctx(
            world, quiet, throttler, origin, API_VERSION_NETWORK, "NetworkInterfaces_CreateOrUpdate", nic_body
        ),
        sub,
        spec.resource_group,
        nic_name,
    ).body
    _finish_new_operations(world, before)  # the NIC is Succeeded before the VM refers to it
    vm_body = {
        "location": location,
        "tags": dict(spec.tags),
        "properties": {
            "hardwareProfile": {"vmSize": spec.vm_size},
            "storageProfile": {
                "imageReference": {
                    "publisher": images.WINDOWS_SERVER_PUBLISHER,
                    "offer": images.WINDOWS_SERVER_OFFER,
                    "sku": spec.sku,
                    "version": spec.version,
                },
                "osDisk": {
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "deleteOption": "Delete",
                    "managedDisk": {"storageAccountType": "StandardSSD_LRS"},
                },
            },
            "osProfile": {
                "computerName": spec.computer_name or _computer_name(spec.name),
                "adminUsername": spec.admin_username,
                # Never stored, never returned: Compute only checks its complexity.
                "adminPassword": f"Out{secrets.token_urlsafe(12)}!9a",
                "windowsConfiguration": {
                    "provisionVMAgent": True,
                    "enableAutomaticUpdates": True,
                    "patchSettings": spec.patch_model(),
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic["id"], "properties": {"primary": True}}]},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        },
    }
    before = set(world.operations)
    compute.put_vm(
        _ctx(world, quiet, throttler, origin, API_VERSION_COMPUTE, "VirtualMachines_CreateOrUpdate", vm_body),
        sub,
        spec.resource_group,
        spec.name,
    )
    _finish_new_operations(world, before)
    vm = world.vms[key(compute.find_vm(world, sub, spec.resource_group, spec.name)["id"])]
    return compute.render_vm(world, vm)


def _computer_name(vm_name: str) -> str:
    """The portal's default: the VM name without what a Windows computer name may not hold, cut to 15."""
    return re.sub(r"[^A-Za-z0-9-]", "", vm_name)[:15] or "vm"


def _seed_location(world: World, sub: str) -> str:
    return next(
        (
            rg["location"]
            for rg in world.resource_groups.values()
            if rg["id"].lower().startswith(f"/subscriptions/{sub}/".lower())
        ),
        "westeurope",
    )
