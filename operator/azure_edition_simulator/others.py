"""Azure as others shape it: eventual consistency, role-assignment propagation, Azure Policy, and
changes made out of band.

Why: real ARM is a set of services that learn about each other's writes late (a NIC's subnet, a VM's
NIC, a fresh role assignment, a resource group being created are "not there yet" for a while), policies
add tags and identities to what a client PUTs, and people change VMs behind an operator's back. A client
that never met these treats the first one as permanent. Each is injectable; eventual consistency also
happens at random with ``Settings.consistency_rate`` (azure profile default: ``DEFAULT_AZURE_RATE``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from . import errors
from .world import Settings, World, key

DEFAULT_AZURE_RATE = 0.02
REFERENCE_RETRY_AFTER = 10  # real seconds (scaled by the timing profile)


def reference_not_provisioned(
    settings: Settings, referenced: str, referencing: str, state: str, last_operation: str
) -> errors.ArmError:
    """Network's transient 429 while a referenced resource is not Succeeded yet (NRP wording)."""
    value = settings.timing.retry_after("consistency", settings.retry_after_seconds)
    if settings.timing.realistic and value is not None:
        value = str(round(REFERENCE_RETRY_AFTER * settings.timing.time_scale))
    return errors.ArmError(
        429,
        "RetryableError",
        "A retryable error occurred.",
        details=[
            {
                "code": "ReferencedResourceNotProvisioned",
                "message": f"Cannot proceed with operation because resource {referenced} used by resource "
                f"{referencing} is not in Succeeded state. Resource is in {state} state and the last "
                f"operation that updated/is updating the resource is {last_operation}.",
            }
        ],
        headers={} if value is None else {"Retry-After": value},
    )


def check_reference(
    settings: Settings, referenced: dict[str, Any], referencing_id: str, last_operation: str
) -> None:
    """Refuse a write whose reference is still provisioning, or (at ``consistency_rate``) seems to be."""
    state = (referenced.get("properties") or {}).get("provisioningState", "Succeeded")
    if state not in ("Succeeded", "Failed"):
        raise reference_not_provisioned(settings, referenced["id"], referencing_id, state, last_operation)
    if settings.consistency_rate > 0 and settings.consistency_rng.random() < settings.consistency_rate:
        raise reference_not_provisioned(
            settings, referenced["id"], referencing_id, "Updating", last_operation
        )


def check_authorization(settings: Settings, client_id: str, object_id: str, path: str, action: str) -> None:
    """403 AuthorizationFailed while a fresh role assignment propagates (ARM's wording)."""
    now = time.time()
    settings.authorization_delays[:] = [d for d in settings.authorization_delays if d[2] > now]
    for delayed_client, scope, _ in settings.authorization_delays:
        if delayed_client.lower() == client_id.lower() and path.lower().startswith(scope):
            raise errors.ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{client_id}' with object id '{object_id}' does not have authorization to perform "
                f"action '{action}' over scope '{path}' or the scope is invalid. If access was recently granted, "
                "please refresh your credentials.",
            )


def arm_action(provider_path: str, method: str) -> str:
    """``Microsoft.Compute/virtualMachines/write`` style action for an ARM path (for the 403 message)."""
    parts = provider_path.split("/providers/", 1)[-1].split("/")
    types = [parts[0], *parts[1::2]] if parts and parts[0] else ["Microsoft.Resources", "subscriptions"]
    verb = {"GET": "read", "DELETE": "delete", "POST": "action"}.get(method, "write")
    return "/".join(types) + f"/{verb}"


# CRP's per-subscription policies as its x-ms-ratelimit-remaining-resource header reports them.
METERS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "PutVM": (("PutVM3Min", 180, 240), ("PutVM30Min", 1800, 1200)),
    "GetOperation": (("GetOperation3Min", 180, 15000), ("GetOperation30Min", 1800, 30000)),
}


def meter(settings: Settings, family: str, subscription: str) -> str:
    """Count one call against a CRP policy family; the header value with what remains per window."""
    now = time.time()
    windows = METERS[family]
    calls = settings.meters.setdefault(f"{family}:{subscription.lower()}", [])
    longest = max(seconds for _, seconds, _ in windows)
    calls[:] = [t for t in calls if now - t < longest]
    calls.append(now)
    return ",".join(
        f"Microsoft.Compute/{name};{max(0, limit - sum(1 for t in calls if now - t < seconds))}"
        for name, seconds, limit in windows
    )


def apply_policy(settings: Settings, world: World, sub: str, vm: dict[str, Any]) -> None:
    """The Azure Policy model: append tags a VM lacks and give it a system-assigned identity."""
    if not settings.policy_enabled:
        return
    if settings.policy_tags:
        tags = vm.setdefault("tags", {})
        for name, value in settings.policy_tags.items():
            tags.setdefault(name, value)
    if settings.policy_identity:
        identity = vm.get("identity") or {}
        kind = identity.get("type", "None")
        if "SystemAssigned" not in kind:
            kind = "SystemAssigned" if kind in ("None", "") else f"SystemAssigned, {kind}"
        identity["type"] = kind
        identity.setdefault("principalId", str(uuid.uuid4()))
        identity.setdefault("tenantId", world.subscription(sub)["tenantId"])
        vm["identity"] = identity


def out_of_band(world: World, vm: dict[str, Any], action: str, args: dict[str, Any]) -> None:
    """A change made by someone else (portal, CLI, another tool), effective at once."""
    from . import compute, skus

    internal = world.vm_internal.setdefault(key(vm["id"]), {})
    if action == "delete":
        compute.remove_vm(world, vm)
        return
    if action == "resize":
        size = skus.find(str(args.get("size", "")))
        if size is None:
            raise ValueError(f"unknown size {args.get('size')!r}")
        vm["properties"]["hardwareProfile"] = {"vmSize": size.name}
    elif action == "remove-nic":
        nic_id = str(args.get("nic_id") or args.get("nicId") or "")
        refs = vm["properties"]["networkProfile"]["networkInterfaces"]
        kept = [r for r in refs if key(r["id"]) != key(nic_id)]
        if len(kept) == len(refs):
            raise ValueError(f"{nic_id!r} is not one of the VM's NICs")
        vm["properties"]["networkProfile"]["networkInterfaces"] = kept
        nic = world.nics.get(key(nic_id))
        if nic is not None:
            compute.detach_nic(world, nic)
    elif action == "set-tags":
        tags = args.get("tags")
        if not isinstance(tags, dict):
            raise ValueError("set-tags needs tags={...}")
        vm["tags"] = {str(k): str(v) for k, v in tags.items()}
    elif action == "stop":
        deallocate = bool(args.get("deallocate", True))
        internal["powerState"] = "deallocated" if deallocate else "stopped"
        if deallocate:  # a deallocated VM gives its dynamic public IPs back
            for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
                for cfg in (
                    (world.nics.get(key(ref["id"])) or {}).get("properties", {}).get("ipConfigurations", [])
                ):
                    pip = world.public_ips.get(
                        key((cfg["properties"].get("publicIPAddress") or {}).get("id", ""))
                    )
                    if pip and pip["properties"].get("publicIPAllocationMethod") == "Dynamic":
                        pip["properties"].pop("ipAddress", None)
    elif action == "start":
        internal.pop("powerState", None)
    else:
        raise ValueError(
            f"unknown out-of-band action {action!r}: delete, resize, remove-nic, set-tags, stop, start"
        )
    etag = int(vm.get("etag", '"0"').strip('"')) + 1
    vm["etag"] = f'"{etag}"'
    world.touch()
